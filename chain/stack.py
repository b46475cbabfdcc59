"""Deploy and wire the whole qcn contract stack on one chain.

Order and wiring:

1. ``ConsortiumRegistry`` (parties + batch anchors), admin = the consortium admin;
2. the settlement token: an existing ERC-20 (production) or the open-mint ``TestToken`` (dev chains only);
3. ``AgreementRegistry`` (templates, agreements, deposit escrow, quarterly evaluation);
4. ``TracingCases`` (three-party cases settled from the escrow);
5. wiring, each link once and for good: the registry checks anchors against the agreement registry
   (``linkAgreementRegistry``), the agreement registry accepts penalties and bound deposits only from the
   case contract (``linkCases``);
6. operator powers on separate keys: ``REGISTRAR_ROLE`` (parties), ``ARBITER_ROLE`` (disputes),
   ``ORACLE_ROLE`` (the gateway's relayer opens cases);
7. optionally the admin role handed to ``final_admin`` (a multisig or ``ConsortiumTimelock``): the
   OpenZeppelin ``AccessControlDefaultAdminRules`` hand-over starts here and the new admin accepts it
   after the delay. From then on the deployer key is not needed (docs/trust-model.md).

The result is one :class:`chain.contracts.Deployment` for the address book, every address under its role.
"""

from __future__ import annotations

from eth_utils import to_checksum_address

from chain.agreements import AGREEMENT_REGISTRY, TEST_TOKEN, AgreementRegistryClient, deploy_test_token
from chain.cases import TRACING_CASES, TracingCasesClient
from chain.contracts import REGISTRY, Deployment, contract_at, deploy
from chain.tx import TxSender

__all__ = ["ROLES", "deploy_stack"]

#: address-book roles of a full deployment
ROLES = ("PartyRegistry", "AnchorRegistry", "AgreementRegistry", "TracingCases", "SettlementToken")


def deploy_stack(
    admin: TxSender,
    *,
    relayer: str,
    token: str | None = None,
    registrar: str | None = None,
    arbiter: str | None = None,
    final_admin: str | None = None,
) -> Deployment:
    """Deploy and wire every contract with the ``admin`` key (the deploy step only).

    ``relayer`` becomes the case oracle, ``registrar`` holds REGISTRAR_ROLE and ``arbiter`` ARBITER_ROLE
    (each defaults to the admin's address: dev chains only). ``final_admin`` (a multisig or timelock
    contract) gets the admin role after the contracts' hand-over delay. ``token`` is the settlement ERC-20's
    address; None deploys the open-mint test token (dev chains only).
    """
    registrar_address = to_checksum_address(registrar or admin.address)
    base = deploy(admin.w3, admin, registrar=registrar_address)
    registry = base.registry
    token_address = to_checksum_address(token) if token else deploy_test_token(admin)
    agreements = AgreementRegistryClient.deploy(admin, party_registry=registry, token=token_address)
    cases = TracingCasesClient.deploy(
        admin, party_registry=registry, anchor_registry=registry, agreement_registry=agreements.address
    )
    registry_contract = contract_at(admin.w3, REGISTRY, registry)
    admin.send(registry_contract.functions.linkAgreementRegistry(agreements.address))
    agreements.link_cases(cases.address)
    cases.grant_role("ORACLE_ROLE", to_checksum_address(relayer))
    cases.grant_role("ARBITER_ROLE", to_checksum_address(arbiter or admin.address))
    if final_admin is not None:
        new_admin = to_checksum_address(final_admin)
        admin.send(registry_contract.functions.beginDefaultAdminTransfer(new_admin))
        cases.begin_admin_transfer(new_admin)
    contracts = dict(base.contracts)
    contracts.update(
        {"AgreementRegistry": agreements.address, "TracingCases": cases.address, "SettlementToken": token_address}
    )
    artifacts = dict(base.artifacts)
    artifacts.update(
        {"AgreementRegistry": AGREEMENT_REGISTRY, "TracingCases": TRACING_CASES}
        | ({} if token else {"SettlementToken": TEST_TOKEN})
    )
    return Deployment(
        chain_id=base.chain_id,
        contracts=contracts,
        artifacts=artifacts,
        block_number=base.block_number,
        tx_hashes=base.tx_hashes,
        deployer=base.deployer,
        admin=base.admin,
    )
