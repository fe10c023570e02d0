import VecShardPrimitives

/// Keeps the k best (highest score) of the (score, id) pairs pushed into it: a binary
/// min-heap whose root is the worst kept pair. Ties in score keep the lower id, so
/// results do not depend on scan order. Capacity k is fixed at creation.
struct TopKHeap {
    let k: Int
    private(set) var scores: [Float]
    private(set) var ids: [UInt32]

    init(k: Int) {
        self.k = k
        scores = []
        ids = []
        scores.reserveCapacity(k)
        ids.reserveCapacity(k)
    }

    var count: Int { scores.count }
    var isFull: Bool { scores.count >= k }

    /// Score a new pair must beat to enter once the heap is full (-infinity before).
    var threshold: Float { scores.count < k ? -.infinity : scores[0] }

    /// `a` ranks below `b`.
    @inline(__always) private static func worse(_ sa: Float, _ ia: UInt32, _ sb: Float, _ ib: UInt32) -> Bool {
        sa < sb || (sa == sb && ia > ib)
    }

    @inline(__always) mutating func push(_ score: Float, _ id: UInt32) {
        if scores.count < k {
            scores.append(score)
            ids.append(id)
            siftUp(scores.count - 1)
        } else if Self.worse(scores[0], ids[0], score, id) {
            scores[0] = score
            ids[0] = id
            siftDown(0)
        }
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        let s = scores[i], d = ids[i]
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.worse(s, d, scores[parent], ids[parent]) else { break }
            scores[i] = scores[parent]
            ids[i] = ids[parent]
            i = parent
        }
        scores[i] = s
        ids[i] = d
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let n = scores.count
        let s = scores[i], d = ids[i]
        while true {
            var child = 2 * i + 1
            guard child < n else { break }
            if child + 1 < n && Self.worse(scores[child + 1], ids[child + 1], scores[child], ids[child]) { child += 1 }
            guard Self.worse(scores[child], ids[child], s, d) else { break }
            scores[i] = scores[child]
            ids[i] = ids[child]
            i = child
        }
        scores[i] = s
        ids[i] = d
    }

    /// The kept pairs, best first.
    func sorted() -> [Neighbor] {
        var out = zip(ids, scores).map { Neighbor(id: $0.0, score: $0.1) }
        out.sort { ScoreOrder.precedes($0.score, $0.id, $1.score, $1.id) }
        return out
    }
}

/// Which rows a search may return: not deleted and, with a filter, allowed. Raw
/// pointers into the tombstone and allow-list bitsets, valid for one search.
struct RowGate {
    let allow: UnsafePointer<UInt64>?
    let allowCapacity: Int
    let dead: UnsafePointer<UInt64>?
    let deadWords: Int

    /// True when every row passes (no filter, no tombstones).
    var isOpen: Bool { allow == nil && dead == nil }

    @inline(__always) func admits(_ id: UInt32) -> Bool {
        let i = Int(id)
        if let allow {
            if i >= allowCapacity || allow[i >> 6] & (UInt64(1) << UInt64(i & 63)) == 0 { return false }
        }
        if let dead, (i >> 6) < deadWords, dead[i >> 6] & (UInt64(1) << UInt64(i & 63)) != 0 { return false }
        return true
    }

    /// Runs body with a gate over `filter` and `tombstones` (nil pointers when unused).
    static func with<T>(filter: AllowList?, tombstones: Bitset, _ body: (RowGate) throws -> T) rethrows -> T {
        let dead: UnsafePointer<UInt64>? = tombstones.setCount > 0 ? UnsafePointer(tombstones.words) : nil
        if let filter {
            return try filter.words.withUnsafeBufferPointer { w in
                try body(RowGate(allow: w.baseAddress ?? UnsafePointer(tombstones.words), allowCapacity: filter.capacity,
                                 dead: dead, deadWords: tombstones.wordCount))
            }
        }
        return try body(RowGate(allow: nil, allowCapacity: 0, dead: dead, deadWords: tombstones.wordCount))
    }

    /// Calls body(id) for every admitted id in 0..<count, in ascending order, walking
    /// the allow list's words (so the cost follows the allowed count, not count).
    func forEachAdmitted(below count: Int, _ body: (UInt32) -> Void) {
        if let allow {
            let words = (min(count, allowCapacity) + 63) / 64
            for w in 0..<words {
                var bits = allow[w]
                if let dead, w < deadWords { bits &= ~dead[w] }
                while bits != 0 {
                    let id = w * 64 + bits.trailingZeroBitCount
                    bits &= bits - 1
                    if id < count { body(UInt32(id)) }
                }
            }
        } else {
            for id in 0..<count where admits(UInt32(id)) { body(UInt32(id)) }
        }
    }
}
