import VecShardHashing

/// The checksum of storage's files and WAL records (XXH64, shared with placement).
typealias XXHash64 = XXH64
