"""Deploy and wire the whole qcn contract stack on one chain.

Order and wiring:

1. ``ConsortiumRegistry`` (parties + batch anchors), admin = the consortium admin;
2. the settlement token: an existing ERC-20 (production) or the open-mint ``TestToken`` (dev chains only);
3. ``AgreementRegistry`` (templates, agreements, deposit escrow, quarterly evaluation);
4. ``TracingCases`` (three-party cases settled from the escrow);
5. wiring: the registry counts anchors in the agreement registry (``linkAgreementRegistry``), the case
   contract may settle penalties (``SETTLER_ROLE``), the gateway's relayer may open cases (``ORACLE_ROLE``).

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


def deploy_stack(admin: TxSender, *, relayer: str, token: str | None = None) -> Deployment:
    """Deploy and wire every contract with ``admin`` as consortium admin; ``relayer`` becomes the case oracle.

    ``token`` is the settlement ERC-20's address; None deploys the open-mint test token (dev chains only).
    """
    base = deploy(admin.w3, admin)
    registry = base.registry
    token_address = to_checksum_address(token) if token else deploy_test_token(admin)
    agreements = AgreementRegistryClient.deploy(admin, party_registry=registry, token=token_address)
    cases = TracingCasesClient.deploy(
        admin, party_registry=registry, anchor_registry=registry, agreement_registry=agreements.address
    )
    admin.send(contract_at(admin.w3, REGISTRY, registry).functions.linkAgreementRegistry(agreements.address))
    agreements.grant_role("SETTLER_ROLE", cases.address)
    cases.grant_role("ORACLE_ROLE", to_checksum_address(relayer))
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
