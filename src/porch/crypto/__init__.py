"""End-to-end encryption building blocks: signatures, safety numbers, message content, Olm,
keys at rest and provisioning of linked devices.

Sans-IO apart from :mod:`porch.crypto.at_rest`, which reads and writes the profile's key files
and the OS keyring. Byte layouts are specified in docs/protocol.md.
"""

from porch.crypto.at_rest import OLM_PICKLE_LABEL, Sealer, load_or_create_profile_key
from porch.crypto.content import (
    MAX_TEXT_BYTES,
    PAD_BLOCK,
    Content,
    Receipt,
    Retry,
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
    "MasterKey",
    "OlmCiphertext",
    "OlmMachine",
    "OneTimeKey",
    "PeerDevice",
    "ProfileKeyError",
    "ProvisionMessage",
    "ProvisioningError",
    "ProvisioningKeyPair",
    "ProvisioningUri",
    "Receipt",
    "Retry",
    "SafetyNumber",
    "SafetyNumberError",
    "Sealer",
    "SignatureError",
    "Text",
    "Typing",
    "Unknown",
    "build_provisioning_uri",
    "decode_content",
    "device_binding_payload",
    "encode_content",
    "encrypt_provision",
    "load_or_create_profile_key",
    "one_time_key_payload",
    "pad",
    "parse_provisioning_uri",
    "qr_text",
    "safety_number",
    "unpad",
    "verify_device_binding",
    "verify_ed25519",
    "verify_one_time_key",
]
