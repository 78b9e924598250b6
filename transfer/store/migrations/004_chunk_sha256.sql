-- The SHA-256 of every ChunkSize (1 MiB) piece of the blob, concatenated
-- (32 bytes each; 64 KiB for a 2 GiB file). A Range request verifies only
-- the chunks it touches instead of re-reading the whole blob. NULL for
-- files stored before this column existed: their Range requests verify the
-- whole blob, as before.
ALTER TABLE files ADD COLUMN chunk_sha256 bytea;
