-- Where the log tailer stands in each file it follows, so that a restart neither re-reads nor skips
-- lines. One row per (source, collector host, file identity); the newest Version wins.
-- FileKey is the file's device:inode (a rotated file keeps it under its new name); Fingerprint
-- (length:hash of the file's first bytes) tells a reused inode or a rewritten file from the one
-- the offset belongs to. Offset is the byte after the last line handed to the receiver.

CREATE TABLE IF NOT EXISTS log_tail_positions ${ON_CLUSTER} (
    Source LowCardinality(String),
    Host LowCardinality(String),
    FileKey String,
    Path String,
    Fingerprint String,
    Offset UInt64,
    Version UInt64,
    UpdatedAt DateTime64(3) DEFAULT now64(3)
) ENGINE = ${Replicated}ReplacingMergeTree(Version)
ORDER BY (Source, Host, FileKey);
