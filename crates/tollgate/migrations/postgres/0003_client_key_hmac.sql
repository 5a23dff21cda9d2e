-- Per-key HMAC request signing (SPEC §4). The signing secret is stored only sealed:
-- AES-256-GCM under the master key, as one TEXT value
-- `v1:<master key fingerprint>:<base64 nonce>:<base64 ciphertext>` (see
-- admission::hmac::HmacSecret::seal). NULL: the key's requests need no signature.
-- Plain TEXT, nullable, no default, so the PostgreSQL mirror is the same statement.
ALTER TABLE client_keys ADD COLUMN hmac_secret TEXT;
