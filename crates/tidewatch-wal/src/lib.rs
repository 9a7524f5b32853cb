//! Write-ahead log: CRC-checked records in segment files, group commit, replay with torn-tail repair
