"""Party registry: registration of each kind, access control, signer rotation, relayers, deactivation,
lab accreditation. Every revert asserts the exact custom error and arguments; every success asserts
the event and the state read back."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from chain.clients import PartyKind, short_name
from chain.errors import InvalidInput

REGISTRAR_ROLE = keccak(text="REGISTRAR_ROLE")
ZERO = b"\x00" * 32
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@pytest.mark.parametrize("kind", [PartyKind.OEM, PartyKind.SUPPLIER])
def test_register_oem_and_supplier(chain, kind):
    newcomer = chain.addr("newcomer")
    sent = chain.parties().register_party(newcomer, kind, "Newco", signer=chain.addr("signer2"))
    assert chain.events(sent, "PartyRegistered") == [
        {
            "account": newcomer,
            "kind": int(kind),
            "name": short_name("Newco"),
            "signer": chain.addr("signer2"),
            "accreditationId": ZERO,
            "accreditationExpiry": 0,
        }
    ]
    party = chain.parties().party(newcomer)
    assert (party.kind, party.active, party.signer, party.name_text) == (kind, True, chain.addr("signer2"), "Newco")
    assert (party.accreditation_id, party.accreditation_expiry) == (ZERO, 0)
    assert chain.parties().is_active(newcomer, kind)
    other = PartyKind.SUPPLIER if kind == PartyKind.OEM else PartyKind.OEM
    assert not chain.parties().is_active(newcomer, other)


def test_register_lab_with_accreditation(chain):
    newcomer = chain.addr("newcomer")
    sent = chain.parties().register_party(
        newcomer, PartyKind.LAB, "Lab Two", accreditation_id="D-PL-99999-01-00", accreditation_expiry=1_900_000_000
    )
    (event,) = chain.events(sent, "PartyRegistered")
    assert event["kind"] == 3
    assert event["accreditationId"] == short_name("D-PL-99999-01-00")
    assert event["accreditationExpiry"] == 1_900_000_000
    assert event["signer"] == newcomer  # signer defaults to the account
    party = chain.parties().party(newcomer)
    assert party.kind == PartyKind.LAB
    assert party.accreditation_text == "D-PL-99999-01-00"
    assert party.accreditation_expiry == 1_900_000_000


def test_base_parties_read_back(chain):
    lab = chain.parties().party(chain.addr("lab"))
    assert (lab.kind, lab.active, lab.name_text) == (PartyKind.LAB, True, "PTB Lab 4.21")
    assert (lab.accreditation_text, lab.accreditation_expiry) == (chain.lab_accreditation, chain.lab_expiry)
    nobody = chain.parties().party(chain.addr("stranger"))
    assert (nobody.kind, nobody.active, nobody.signer) == (None, False, ZERO_ADDRESS)


def test_register_duplicate_reverts(chain, expect_revert):
    with expect_revert("PartyAlreadyRegistered", account=chain.addr("supplier"), kind=2):
        chain.parties().register_party(chain.addr("supplier"), PartyKind.OEM, "again")


def test_register_by_non_admin_reverts(chain, expect_revert):
    with expect_revert("AccessControlUnauthorizedAccount", account=chain.addr("oem"), neededRole=REGISTRAR_ROLE):
        chain.parties("oem").register_party(chain.addr("newcomer"), PartyKind.SUPPLIER, "x")


def test_register_invalid_inputs_revert(chain, expect_revert):
    admin = chain.parties()
    newcomer = chain.addr("newcomer")
    with expect_revert("InvalidAccount", account=ZERO_ADDRESS):
        admin.register_party(ZERO_ADDRESS, PartyKind.OEM, "x", signer=newcomer)
    with expect_revert("InvalidAccreditation", account=newcomer, accreditationId=ZERO, accreditationExpiry=0):
        admin.register_party(newcomer, PartyKind.LAB, "lab without accreditation")
    acc = short_name("D-PL-1")
    with expect_revert("InvalidAccreditation", account=newcomer, accreditationId=acc, accreditationExpiry=5):
        admin.register_party(newcomer, PartyKind.OEM, "oem", accreditation_id="D-PL-1", accreditation_expiry=5)


def test_register_lab_with_expired_accreditation_reverts(chain, expect_revert):
    chain.set_time(1_800_000_000)
    with expect_revert(
        "AccreditationExpired", lab=chain.addr("newcomer"), accreditationExpiry=1_799_999_999, at=1_800_000_000
    ):
        chain.parties().register_party(
            chain.addr("newcomer"), PartyKind.LAB, "late", accreditation_id="D-1", accreditation_expiry=1_799_999_999
        )


def test_name_longer_than_32_bytes_is_rejected_client_side(chain):
    with pytest.raises(InvalidInput, match="at most 32"):
        chain.parties().register_party(chain.addr("newcomer"), PartyKind.OEM, "x" * 33)


def test_signer_rotation_by_the_party_itself(chain):
    supplier = chain.addr("supplier")
    sent = chain.parties("supplier").set_signer(supplier, chain.addr("signer2"))
    assert chain.events(sent, "SignerRotated") == [
        {
            "account": supplier,
            "previousSigner": supplier,
            "newSigner": chain.addr("signer2"),
            "rotatedBy": supplier,
        }
    ]
    assert chain.parties().party(supplier).signer == chain.addr("signer2")


def test_registrar_cannot_rotate_a_signer_at_once_only_propose_with_a_delay(chain, expect_revert):
    """High finding: REGISTRAR_ROLE rotated any party's signer at once and could then forge its signatures.
    Now the registrar only proposes; the change is due after 7 days and the party can cancel it meanwhile."""
    supplier, t0 = chain.addr("supplier"), 1_800_000_000
    chain.set_time(t0)
    with expect_revert("NotPartyOrRegistrar", account=supplier, caller=chain.addr("admin")):
        chain.parties("admin").set_signer(supplier, chain.addr("signer2"))
    sent = chain.parties("admin").propose_signer(supplier, chain.addr("signer2"))
    due = t0 + 7 * 86_400
    assert chain.events(sent, "SignerChangeProposed") == [
        {"account": supplier, "newSigner": chain.addr("signer2"), "effectiveAt": due, "by": chain.addr("admin")}
    ]
    assert chain.parties().pending_signer(supplier) == (chain.addr("signer2"), due)
    with expect_revert("SignerChangeNotDue", account=supplier, effectiveAt=due, at=due - 1):
        chain.set_time(due - 1)
        chain.parties("stranger").complete_signer_change(supplier)
    assert chain.parties().party(supplier).signer == supplier
    # the party objects: cancelled, nothing changes
    with expect_revert("NotPartyOrRegistrar", account=supplier, caller=chain.addr("oem")):
        chain.parties("oem").cancel_signer_change(supplier)
    cancelled = chain.parties("supplier").cancel_signer_change(supplier)
    assert chain.events(cancelled, "SignerChangeCancelled")[0]["newSigner"] == chain.addr("signer2")
    chain.set_time(due + 1)
    with expect_revert("NoSignerChange", account=supplier):
        chain.parties("stranger").complete_signer_change(supplier)
    # a lost key: nobody objects, the change applies once due
    chain.parties("admin").propose_signer(supplier, chain.addr("signer2"))
    chain.set_time(due + 1 + 7 * 86_400)
    done = chain.parties("stranger").complete_signer_change(supplier)
    assert chain.events(done, "SignerRotated")[0]["newSigner"] == chain.addr("signer2")
    assert chain.parties().party(supplier).signer == chain.addr("signer2")


def test_signer_rotation_reverts(chain, expect_revert):
    supplier = chain.addr("supplier")
    with expect_revert("NotPartyOrRegistrar", account=supplier, caller=chain.addr("oem")):
        chain.parties("oem").set_signer(supplier, chain.addr("signer2"))
    with expect_revert("SignerUnchanged", account=supplier, signer=supplier):
        chain.parties("supplier").set_signer(supplier, supplier)
    with expect_revert("InvalidSigner", account=supplier, signer=ZERO_ADDRESS):
        chain.parties("supplier").set_signer(supplier, ZERO_ADDRESS)
    with expect_revert("UnknownParty", account=chain.addr("stranger")):
        chain.parties().set_signer(chain.addr("stranger"), chain.addr("signer2"))


def test_deactivated_party_cannot_rotate_itself(chain, expect_revert):
    supplier = chain.addr("supplier")
    chain.parties().deactivate(supplier)
    with expect_revert("PartyInactive", account=supplier):
        chain.parties("supplier").set_signer(supplier, chain.addr("signer2"))
    assert chain.parties().party(supplier).signer == supplier


@pytest.mark.parametrize("by", ["admin", "supplier"])
def test_relayer_approval_and_revocation(chain, by):
    supplier, relayer = chain.addr("supplier"), chain.addr("relayer")
    assert not chain.parties().is_relayer_for(supplier, relayer)
    sent = chain.parties(by).approve_relayer(supplier, relayer)
    assert chain.events(sent, "RelayerApproved") == [
        {"supplier": supplier, "relayer": relayer, "approvedBy": chain.addr(by)}
    ]
    assert chain.parties().is_relayer_for(supplier, relayer)
    assert not chain.parties().is_relayer_for(chain.addr("supplier2"), relayer)
    sent = chain.parties(by).revoke_relayer(supplier, relayer)
    assert chain.events(sent, "RelayerRevoked") == [
        {"supplier": supplier, "relayer": relayer, "revokedBy": chain.addr(by)}
    ]
    assert not chain.parties().is_relayer_for(supplier, relayer)


def test_relayer_approval_reverts(chain, expect_revert):
    supplier, relayer = chain.addr("supplier"), chain.addr("relayer")
    with expect_revert("NotPartyOrRegistrar", account=supplier, caller=chain.addr("supplier2")):
        chain.parties("supplier2").approve_relayer(supplier, relayer)
    with expect_revert("NotSupplier", account=chain.addr("oem")):
        chain.parties().approve_relayer(chain.addr("oem"), relayer)
    with expect_revert("InvalidAccount", account=ZERO_ADDRESS):
        chain.parties().approve_relayer(supplier, ZERO_ADDRESS)
    with expect_revert("RelayerNotApproved", supplier=supplier, relayer=relayer):
        chain.parties().revoke_relayer(supplier, relayer)
    chain.parties().approve_relayer(supplier, relayer)
    with expect_revert("RelayerAlreadyApproved", supplier=supplier, relayer=relayer):
        chain.parties("supplier").approve_relayer(supplier, relayer)


def test_deactivation(chain, expect_revert):
    oem = chain.addr("oem")
    sent = chain.parties().deactivate(oem)
    assert chain.events(sent, "PartyDeactivated") == [{"account": oem, "deactivatedBy": chain.addr("admin")}]
    party = chain.parties().party(oem)
    assert (party.kind, party.active) == (PartyKind.OEM, False)
    assert not chain.parties().is_active(oem, PartyKind.OEM)
    with expect_revert("PartyInactive", account=oem):
        chain.parties().deactivate(oem)
    with expect_revert("UnknownParty", account=chain.addr("stranger")):
        chain.parties().deactivate(chain.addr("stranger"))
    with expect_revert("AccessControlUnauthorizedAccount", account=chain.addr("lab"), neededRole=REGISTRAR_ROLE):
        chain.parties("lab").deactivate(chain.addr("supplier"))


def test_lab_accreditation_validity_and_expiry(chain):
    lab = chain.addr("lab")
    parties = chain.parties()
    assert parties.accreditation_valid(lab, chain.lab_expiry - 1)
    assert parties.accreditation_valid(lab, chain.lab_expiry)  # expiry second is still valid
    assert not parties.accreditation_valid(lab, chain.lab_expiry + 1)
    assert not parties.accreditation_valid(chain.addr("supplier"), 0)  # not a lab
    parties.deactivate(lab)
    assert not parties.accreditation_valid(lab, chain.lab_expiry - 1)


def test_lab_accreditation_renewal(chain, expect_revert):
    lab = chain.addr("lab")
    sent = chain.parties().set_accreditation(lab, "D-PL-12345-02-00", chain.lab_expiry + 1000)
    assert chain.events(sent, "AccreditationUpdated") == [
        {"lab": lab, "accreditationId": short_name("D-PL-12345-02-00"), "accreditationExpiry": chain.lab_expiry + 1000}
    ]
    assert chain.parties().accreditation_valid(lab, chain.lab_expiry + 1000)
    assert chain.parties().party(lab).accreditation_text == "D-PL-12345-02-00"
    with expect_revert("NotALab", account=chain.addr("oem"), kind=1):
        chain.parties().set_accreditation(chain.addr("oem"), "X", chain.lab_expiry)


def test_version_and_interfaces(chain):
    registry = chain.harness
    assert registry.functions.version().call() == "2.1.0"
    assert registry.functions.hasRole(REGISTRAR_ROLE, chain.addr("admin")).call()
    assert registry.functions.supportsInterface(bytes.fromhex("01ffc9a7")).call()  # ERC-165
    assert not registry.functions.supportsInterface(bytes.fromhex("ffffffff")).call()
