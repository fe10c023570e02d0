/// Where a point lives, as pure functions of the topology and the point (unit-tested without I/O).
///
/// Shard inside a group: rendezvous (highest-random-weight) hashing. Each shard's weight for an
/// id is `mix(xxh64(id) ^ xxh64(shardName))`; the highest weight wins (ties, which need a 64-bit
/// collision, go to the smaller name). Adding a shard to a group of N moves only the ids the new
/// shard now wins, about 1/(N+1) of them, and every moved id moves to the new shard.
public enum Placement {
    /// The owner of `idHash` among `shards` (names). `shards` must not be empty.
    public static func owner(ofIDHash idHash: UInt64, among shards: [String]) -> Int {
        precondition(!shards.isEmpty, "a shard group has at least one shard")
        var best = 0
        var bestWeight = weight(idHash, StableHash.xxh64(shards[0]))
        for i in 1..<shards.count {
            let w = weight(idHash, StableHash.xxh64(shards[i]))
            if w > bestWeight || (w == bestWeight && shards[i] < shards[best]) {
                best = i
                bestWeight = w
            }
        }
        return best
    }

    public static func owner(ofID id: String, among shards: [String]) -> Int {
        owner(ofIDHash: StableHash.xxh64(id), among: shards)
    }

    /// `shardHashes[i] = xxh64(shardName[i])`, precomputed: the hot path for routing many ids.
    @inline(__always)
    public static func owner(ofIDHash idHash: UInt64, amongShardHashes shardHashes: [UInt64]) -> Int {
        var best = 0
        var bestWeight = weight(idHash, shardHashes[0])
        for i in 1..<shardHashes.count {
            let w = weight(idHash, shardHashes[i])
            if w > bestWeight {
                best = i
                bestWeight = w
            }
        }
        return best
    }

    @inline(__always)
    static func weight(_ idHash: UInt64, _ shardHash: UInt64) -> UInt64 {
        StableHash.mix(idHash ^ shardHash)
    }

    /// Results each shard returns for a top-k search: k for an exact search (the merge of exact
    /// per-shard top-k lists is the exact global top-k), ceil(k × oversample) for approximate
    /// ones, never more than `maxK`.
    public static func perShardK(k: Int, exact: Bool, oversample: Double, maxK: Int) -> Int {
        if exact { return k }
        let scaled = (Double(k) * max(oversample, 1)).rounded(.up)
        return min(max(k, Int(scaled)), maxK)
    }
}
