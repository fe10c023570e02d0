import VecShardPrimitives
import VecShardSchema

/// Merges per-shard top-k lists into the global top k: a bounded min-heap keyed by score (higher
/// is closer; ties broken by the smaller id, so the order is total and shard-independent), with
/// duplicate ids kept once, at their best score. O(n log k) for n candidates.
public struct TopKMerger {
    private let k: Int
    private var heap: [SearchHit] = []   // min-heap: the worst kept hit at the root
    private var positionByID: [String: Int] = [:]

    public init(k: Int) {
        self.k = k
        heap.reserveCapacity(k)
    }

    /// True if `a` ranks before (is closer than) `b`.
    @inline(__always)
    static func better(_ a: SearchHit, _ b: SearchHit) -> Bool {
        ScoreOrder.precedes(a.score, a.id, b.score, b.id)
    }

    public mutating func add(_ hit: SearchHit) {
        guard k > 0 else { return }
        if let at = positionByID[hit.id] {
            if Self.better(hit, heap[at]) {   // the same id from two places: keep the better copy
                heap[at] = hit
                siftDown(at)
            }
            return
        }
        if heap.count < k {
            heap.append(hit)
            positionByID[hit.id] = heap.count - 1
            siftUp(heap.count - 1)
        } else if Self.better(hit, heap[0]) {
            positionByID.removeValue(forKey: heap[0].id)
            heap[0] = hit
            positionByID[hit.id] = 0
            siftDown(0)
        }
    }

    public mutating func add(contentsOf hits: [SearchHit]) {
        for hit in hits { add(hit) }
    }

    /// The kept hits, best first.
    public func result() -> [SearchHit] {
        heap.sorted(by: Self.better)
    }

    private mutating func swapAt(_ i: Int, _ j: Int) {
        heap.swapAt(i, j)
        positionByID[heap[i].id] = i
        positionByID[heap[j].id] = j
    }

    private mutating func siftUp(_ index: Int) {
        var i = index
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.better(heap[parent], heap[i]) else { return }
            swapAt(i, parent)
            i = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var i = index
        while true {
            let l = 2 * i + 1, r = l + 1
            var worst = i
            if l < heap.count && Self.better(heap[worst], heap[l]) { worst = l }
            if r < heap.count && Self.better(heap[worst], heap[r]) { worst = r }
            if worst == i { return }
            swapAt(i, worst)
            i = worst
        }
    }
}
