import VecShardPrimitives

/// The id hash placement uses: XXH64 with seed 0 over the id's UTF-8 bytes.
///
/// FROZEN: changing it moves every point. It is a published algorithm (xxHash, 64-bit variant),
/// so any tool in any language can compute where an id lives. Never Swift's `Hasher`, which is
/// seeded per process.
public enum StableHash {
    public static func xxh64(_ string: String, seed: UInt64 = 0) -> UInt64 {
        XXH64.hash(string, seed: seed)
    }

    public static func xxh64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        XXH64.hash(bytes, seed: seed)
    }

    /// A 64-bit finalizer (murmur3's fmix64) that spreads `x` over all bits.
    @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var k = x
        k ^= k >> 33
        k = k &* 0xff51_afd7_ed55_8ccd
        k ^= k >> 33
        k = k &* 0xc4ce_b9fe_1a85_ec53
        k ^= k >> 33
        return k
    }
}
