/// Largest k a search accepts.
public let maxSearchK = 10_000

/// Largest vector dimension the engine accepts.
public let maxDimension = 4096

/// One result of a search: an internal row id and its score (higher is closer, see
/// `DistanceMetric`).
public struct Neighbor: Sendable, Equatable, Hashable {
    public var id: UInt32
    public var score: Float
    public init(id: UInt32, score: Float) {
        self.id = id
        self.score = score
    }
}

/// A set of internal ids a search may return: a bitset over ids 0..<capacity plus the
/// number of ids in it. Storage builds it from its metadata indexes; ids at or beyond
/// `capacity` are not allowed. The engine applies it during the search, not after.
public struct AllowList: Sendable, Equatable {
    /// Bit i of words[i / 64] (least significant first) is set when id i is allowed.
    public private(set) var words: [UInt64]
    /// Ids covered by the bitset: 0..<capacity.
    public let capacity: Int
    /// Number of allowed ids.
    public private(set) var count: Int

    /// An empty list covering ids 0..<capacity.
    public init(capacity: Int) {
        precondition(capacity >= 0)
        self.capacity = capacity
        self.words = [UInt64](repeating: 0, count: (capacity + 63) / 64)
        self.count = 0
    }

    /// A list allowing exactly `ids` (ids at or beyond capacity are ignored).
    public init<S: Sequence>(ids: S, capacity: Int) where S.Element == UInt32 {
        self.init(capacity: capacity)
        for id in ids { insert(id) }
    }

    /// A list from raw bitset words (bit i of words[i/64] = id i allowed); bits at or
    /// beyond capacity are cleared.
    public init(words: [UInt64], capacity: Int) {
        precondition(words.count * 64 >= capacity, "words cover \(words.count * 64) ids, capacity \(capacity)")
        var w = Array(words.prefix((capacity + 63) / 64))
        if capacity % 64 != 0, !w.isEmpty { w[w.count - 1] &= (UInt64(1) << UInt64(capacity % 64)) - 1 }
        self.words = w
        self.capacity = capacity
        self.count = w.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// Allows id (ignored when id >= capacity).
    public mutating func insert(_ id: UInt32) {
        let i = Int(id)
        guard i < capacity else { return }
        let bit = UInt64(1) << UInt64(i & 63)
        if words[i >> 6] & bit == 0 {
            words[i >> 6] |= bit
            count += 1
        }
    }

    public func contains(_ id: UInt32) -> Bool {
        let i = Int(id)
        return i < capacity && words[i >> 6] & (UInt64(1) << UInt64(i & 63)) != 0
    }
}

/// Per-call knobs of one search. A nil knob takes the index's default (from its
/// `IndexSpec`); knobs that do not apply to an index are ignored.
public struct SearchParameters: Sendable {
    /// Number of neighbours wanted, 1...maxSearchK. Fewer come back when fewer live
    /// vectors (that pass the filter) exist.
    public var k: Int
    /// Only these internal ids may be returned; applied during the search.
    public var filter: AllowList?
    /// IVF: number of inverted lists scanned (clamped to nlist).
    public var nprobe: Int?
    /// HNSW: size of the dynamic candidate list (raised to k when smaller).
    public var ef: Int?
    /// IVF_PQ: re-rank the best k × refine PQ candidates with full-precision vectors;
    /// 0 or 1 disables re-ranking.
    public var refine: Int?
    /// Forces an exact scan of every live (and allowed) vector, whatever the index.
    public var exact: Bool
    /// Overrides `IndexSpec.filterExactFraction` for this call: a filter allowing at most
    /// this fraction of the live vectors is answered by an exact scan of the allowed ones
    /// (0 = always walk the index, 1 = always scan).
    public var filterExactFraction: Double?

    public init(k: Int = 10, filter: AllowList? = nil, nprobe: Int? = nil, ef: Int? = nil,
                refine: Int? = nil, exact: Bool = false, filterExactFraction: Double? = nil) {
        self.k = k
        self.filter = filter
        self.nprobe = nprobe
        self.ef = ef
        self.refine = refine
        self.exact = exact
        self.filterExactFraction = filterExactFraction
    }

    /// True when the filter is small enough for the exact path (see filterExactFraction).
    func prefersExactScan(live: Int, default fraction: Double) -> Bool {
        guard let filter else { return false }
        return Double(filter.count) <= (filterExactFraction ?? fraction) * Double(live)
    }

    func validate() throws {
        guard (1...maxSearchK).contains(k) else { throw EngineError.invalidK(k, max: maxSearchK) }
        if let nprobe, nprobe < 1 { throw EngineError.invalidParameter("nprobe \(nprobe) must be at least 1") }
        if let ef, ef < 1 { throw EngineError.invalidParameter("ef \(ef) must be at least 1") }
        if let ef, ef > 100_000 { throw EngineError.invalidParameter("ef \(ef) is above the maximum 100000") }
        if let f = filterExactFraction, !(0...1).contains(f) {
            throw EngineError.invalidParameter("filter_exact_fraction \(f) must be between 0 and 1")
        }
        if let refine, refine < 0 || refine > 1000 {
            throw EngineError.invalidParameter("refine \(refine) must be between 0 and 1000")
        }
    }
}
