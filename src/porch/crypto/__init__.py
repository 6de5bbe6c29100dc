"""End-to-end encryption building blocks: signatures, safety numbers, message content, Olm,
Megolm group sessions, the sealed group state, keys at rest and provisioning of linked
devices.

Sans-IO apart from :mod:`porch.crypto.at_rest`, which reads and writes the profile's key files
and the OS keyring. Byte layouts are specified in docs/protocol.md.
"""

from porch.crypto.at_rest import OLM_PICKLE_LABEL, Sealer, load_or_create_profile_key
from porch.crypto.content import (
    MAX_TEXT_BYTES,
    PAD_BLOCK,
    Content,
    GroupKey,
    GroupStateKey,
    Receipt,
    Retry,
    Sent,
    Text,
    Typing,
    Unknown,
    decode_content,
    encode_content,
    pad,
    unpad,
)
from porch.crypto.errors import (
    ContentError,
    CryptoError,
    DecryptError,
    ProfileKeyError,
    ProvisioningError,
    SignatureError,
)
from porch.crypto.group_state import (
    GroupSettings,
    GroupState,
    blob_epoch,
    open_group_state,
    seal_group_state,
)
from porch.crypto.megolm import (
    GroupPlaintext,
    InboundGroupSession,
    OutboundGroupSession,
    RotationPolicy,
    group_key_payload,
    must_rotate,
    rotation_reason,
)
from porch.crypto.olm import OlmCiphertext, OlmMachine, OneTimeKey, PeerDevice
from porch.crypto.provisioning import (
    ProvisioningKeyPair,
    ProvisioningUri,
    ProvisionMessage,
    build_provisioning_uri,
    encrypt_provision,
    parse_provisioning_uri,
    qr_text,
)
from porch.crypto.safety import Comparison, SafetyNumber, SafetyNumberError, safety_number
from porch.crypto.signing import (
    MasterKey,
    device_binding_payload,
    one_time_key_payload,
    verify_device_binding,
    verify_ed25519,
    verify_one_time_key,
)

__all__ = [
    "MAX_TEXT_BYTES",
    "OLM_PICKLE_LABEL",
    "PAD_BLOCK",
    "Comparison",
    "Content",
    "ContentError",
    "CryptoError",
    "DecryptError",
    "GroupKey",
    "GroupPlaintext",
    "GroupSettings",
    "GroupState",
    "GroupStateKey",
    "InboundGroupSession",
    "MasterKey",
    "OlmCiphertext",
    "OlmMachine",
    "OneTimeKey",
    "OutboundGroupSession",
    "PeerDevice",
    "ProfileKeyError",
    "ProvisionMessage",
    "ProvisioningError",
    "ProvisioningKeyPair",
    "ProvisioningUri",
    "Receipt",
    "Retry",
    "RotationPolicy",
    "SafetyNumber",
    "SafetyNumberError",
    "Sealer",
    "Sent",
    "SignatureError",
    "Text",
    "Typing",
    "Unknown",
    "blob_epoch",
    "build_provisioning_uri",
    "decode_content",
    "device_binding_payload",
    "encode_content",
    "encrypt_provision",
    "group_key_payload",
    "load_or_create_profile_key",
    "must_rotate",
    "one_time_key_payload",
    "open_group_state",
    "pad",
    "parse_provisioning_uri",
    "qr_text",
    "rotation_reason",
    "safety_number",
    "seal_group_state",
    "unpad",
    "verify_device_binding",
    "verify_ed25519",
    "verify_one_time_key",
]
