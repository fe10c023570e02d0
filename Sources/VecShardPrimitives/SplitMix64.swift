/// splitmix64 (Steele, Lea and Flood): a seeded generator whose sequence is the same on every
/// platform and in every process, for index builds (k-means samples, HNSW levels), stress
/// workloads and tests that must be reproducible.
@frozen public struct SplitMix64: RandomNumberGenerator, Sendable {
    @usableFromInline var state: UInt64

    @inlinable public init(seed: UInt64) { state = seed }

    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A hash of (seed, value), uniform over UInt64: per-item randomness that does not depend
    /// on the order items are processed in.
    @inlinable public static func mix(_ seed: UInt64, _ value: UInt64) -> UInt64 {
        var g = SplitMix64(seed: seed ^ (value &* 0xD6E8_FEB8_6659_FD93))
        _ = g.next()
        return g.next()
    }
}
