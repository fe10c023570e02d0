#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CVecKernels
import VecShardPrimitives

// Over 500 lines on purpose: insertion, search, repair after deletes and the file format work on
// one graph layout whose invariants (link counts, the entry point, levels) they share.

/// HNSW: a hierarchical navigable small-world graph (Malkov & Yashunin). Every node has
/// up to 2·m links on layer 0 and up to m on each upper layer it reaches (a node's top
/// layer is drawn from an exponential distribution with rate ln m). A search descends
/// greedily through the upper layers and runs a best-first search with a candidate list
/// of size ef on layer 0.
///
/// Inserts are incremental: `add` after a build links the new nodes into the graph.
/// A batch is inserted in parallel with one lock per node (as hnswlib does). Deleted
/// nodes stay in the graph and are traversed, but never returned.
/// Memory: count × (dimension × 4 + (2·m + 1) × 4 + 10) bytes plus upper-layer links.
final class HNSWIndex: VectorIndex, @unchecked Sendable {
    let kind = IndexKind.hnsw
    let spec: IndexSpec
    let metric: DistanceMetric
    let dimension: Int
    /// Links per node on upper layers (maxM) and on layer 0 (maxM0 = 2·m).
    let maxM: Int
    let maxM0: Int
    private let levelMultiplier: Double
    private let lock = ReadWriteLock()
    private let store: VectorStore
    private let tombstones = Bitset()
    private let input: VectorInput
    private let kernel: ScoreKernel

    /// Layer-0 links, (maxM0 + 1) UInt32 per node: the link count, then the links.
    private var level0: UnsafeMutablePointer<UInt32>
    /// Top layer of each node.
    private var levels: UnsafeMutablePointer<UInt8>
    /// Upper-layer links of nodes with level > 0: level × (maxM + 1) UInt32
    /// (layer l at (l − 1) × (maxM + 1)), nil for level-0 nodes.
    private var upper: UnsafeMutablePointer<UnsafeMutablePointer<UInt32>?>
    /// One spin lock per node, held while its links change during parallel inserts.
    private var nodeLocks: UnsafeMutablePointer<UInt8>
    private var capacity = 0
    private var entryPoint = -1
    private var maxLevel = -1
    /// Guards entryPoint and maxLevel during parallel inserts.
    private let entryLock = Lock()
    private let scratchPool: ScratchPool<HNSWScratch>

    init(spec: IndexSpec, metric: DistanceMetric, dimension: Int) {
        self.spec = spec
        self.metric = metric
        self.dimension = dimension
        self.maxM = spec.m
        self.maxM0 = 2 * spec.m
        self.levelMultiplier = 1 / log(Double(max(spec.m, 2)))
        self.store = VectorStore(dimension: dimension)
        self.input = VectorInput(metric: metric, dimension: dimension)
        self.kernel = ScoreKernel(metric: metric)
        level0 = allocateBlock(bytes: 64).bindMemory(to: UInt32.self, capacity: 16)
        levels = .allocate(capacity: 1)
        upper = .allocate(capacity: 1)
        nodeLocks = .allocate(capacity: 1)
        let m0 = 2 * spec.m
        scratchPool = ScratchPool { HNSWScratch(linkCapacity: m0 + 1) }
    }

    deinit {
        for i in 0..<store.count { upper[i]?.deallocate() }
        freeBlock(level0)
        levels.deallocate()
        upper.deallocate()
        nodeLocks.deallocate()
    }

    private struct FileInfo: Codable {
        var spec: IndexSpec
        var entryPoint: Int
        var maxLevel: Int
    }

    convenience init(file: IndexFileReader) throws {
        let info = try file.decode("spec", as: FileInfo.self)
        try info.spec.validate(dimension: file.dimension)
        self.init(spec: info.spec, metric: file.metric, dimension: file.dimension)
        let n = file.count
        let vectors = try file.array("vecs", of: Float.self, count: n * dimension)
        let lv = try file.array("lvls", of: UInt8.self, count: n)
        let l0 = try file.array("lnk0", of: UInt32.self, count: n * (maxM0 + 1))
        let upperCount = lv.reduce(0) { $0 + Int($1) } * (maxM + 1)
        let up = try file.array("lnku", of: UInt32.self, count: upperCount)
        guard (n == 0 && info.entryPoint == -1) || (0..<n).contains(info.entryPoint),
              info.maxLevel == (n == 0 ? -1 : Int(lv[info.entryPoint])) else {
            throw file.corrupt("entry point \(info.entryPoint) at level \(info.maxLevel) does not match the graph")
        }
        // Every link must name an existing node and every count fit its list.
        for i in 0..<n {
            let c = Int(l0[i * (maxM0 + 1)])
            guard c <= maxM0 else { throw file.corrupt("node \(i) has \(c) layer-0 links, at most \(maxM0) allowed") }
            for j in 0..<c where Int(l0[i * (maxM0 + 1) + 1 + j]) >= n { throw file.corrupt("node \(i) links past the end") }
        }
        var offset = 0
        for i in 0..<n {
            for _ in 0..<Int(lv[i]) {
                let c = Int(up[offset])
                guard c <= maxM else { throw file.corrupt("node \(i) has \(c) upper links, at most \(maxM) allowed") }
                for j in 0..<c where Int(up[offset + 1 + j]) >= n { throw file.corrupt("node \(i) links past the end") }
                offset += maxM + 1
            }
        }
        if n > 0 { store.append(vectors.baseAddress!, rows: n) }
        grow(to: n)
        offset = 0
        for i in 0..<n {
            levels[i] = lv[i]
            (level0 + i * (maxM0 + 1)).update(from: l0.baseAddress! + i * (maxM0 + 1), count: maxM0 + 1)
            if lv[i] > 0 {
                let size = Int(lv[i]) * (maxM + 1)
                let block = UnsafeMutablePointer<UInt32>.allocate(capacity: size)
                block.update(from: up.baseAddress! + offset, count: size)
                upper[i] = block
                offset += size
            }
        }
        entryPoint = info.entryPoint
        maxLevel = info.maxLevel
        tombstones.load(try file.array("dead", of: UInt64.self, count: (n + 63) / 64))
    }

    var count: Int { lock.read { store.count } }
    var liveCount: Int { lock.read { store.count - tombstones.setCount } }
    var memoryBytes: Int {
        lock.read {
            var upperBytes = 0
            for i in 0..<store.count where levels[i] > 0 { upperBytes += Int(levels[i]) * (maxM + 1) * 4 }
            return store.ownedBytes + capacity * ((maxM0 + 1) * 4 + 1 + 8 + 1) + upperBytes + tombstones.wordCount * 8
        }
    }

    // MARK: graph storage

    /// Makes room for `n` nodes (zeroed links), keeping existing ones.
    private func grow(to n: Int) {
        guard n > capacity else { return }
        let newCapacity = max(n, capacity + capacity / 2, 64)
        let stride = maxM0 + 1
        let l0 = allocateBlock(bytes: newCapacity * stride * 4).bindMemory(to: UInt32.self, capacity: newCapacity * stride)
        l0.initialize(repeating: 0, count: newCapacity * stride)
        l0.update(from: level0, count: capacity * stride)
        freeBlock(level0)
        level0 = l0
        let lv = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        lv.initialize(repeating: 0, count: newCapacity)
        lv.update(from: levels, count: capacity)
        levels.deallocate()
        levels = lv
        let up = UnsafeMutablePointer<UnsafeMutablePointer<UInt32>?>.allocate(capacity: newCapacity)
        up.initialize(repeating: nil, count: newCapacity)
        up.update(from: upper, count: capacity)
        upper.deallocate()
        upper = up
        let locks = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        locks.initialize(repeating: 0, count: newCapacity)
        nodeLocks.deallocate()
        nodeLocks = locks
        capacity = newCapacity
    }

    /// The link list (count, then links) of node on layer.
    @inline(__always) private func links(_ node: Int, _ layer: Int) -> UnsafeMutablePointer<UInt32> {
        layer == 0 ? level0 + node * (maxM0 + 1) : upper[node]! + (layer - 1) * (maxM + 1)
    }

    /// Distance used inside the graph: lower is closer (squared L2, or −inner product).
    @inline(__always) private func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float {
        metric == .l2 ? vk_l2sq(a, b, dimension) : -vk_dot(a, b, dimension)
    }

    @inline(__always) private func distances(_ q: UnsafePointer<Float>, _ ids: UnsafePointer<UInt32>, _ n: Int,
                                             _ out: UnsafeMutablePointer<Float>) {
        if metric == .l2 {
            vk_l2sq_gather(q, store.base, dimension, ids, n, out)
        } else {
            vk_dot_gather(q, store.base, dimension, ids, n, out)
            for i in 0..<n { out[i] = -out[i] }
        }
    }

    private func randomLevel(_ id: Int) -> Int {
        let bits = SplitMix64.mix(spec.seed, UInt64(id))
        let u = 1 - Double(bits >> 11) * 0x1.0p-53  // (0, 1]
        return min(Int(-log(u) * levelMultiplier), 31)
    }

    // MARK: search

    /// Greedy descent on one layer from `start`: the closest node reachable by always
    /// moving to a closer neighbour.
    private func greedy(_ q: UnsafePointer<Float>, from start: Int, startDistance: Float, layer: Int,
                        locking: Bool, scratch: HNSWScratch) -> (Int, Float) {
        var current = start, best = startDistance
        var changed = true
        let buf = scratch.linkBuffer, dist = scratch.distanceBuffer
        while changed {
            changed = false
            let n = copyLinks(current, layer, into: buf, locking: locking)
            distances(q, buf, n, dist)
            for i in 0..<n where dist[i] < best {
                best = dist[i]
                current = Int(buf[i])
                changed = true
            }
        }
        return (current, best)
    }

    @inline(__always) private func copyLinks(_ node: Int, _ layer: Int, into buf: UnsafeMutablePointer<UInt32>,
                                             locking: Bool) -> Int {
        let l = links(node, layer)
        if locking { vk_spin_lock(nodeLocks + node) }
        let n = Int(l[0])
        buf.update(from: l + 1, count: n)
        if locking { vk_spin_unlock(nodeLocks + node) }
        return n
    }

    /// Best-first search of one layer from `entry` with a candidate list of size ef.
    /// Leaves the (up to ef) best admitted nodes in scratch.results (a max-heap of keys).
    /// While inserting (`building`) every node is admitted and links are read under locks.
    private func searchLayer(_ q: UnsafePointer<Float>, entry: Int, entryDistance: Float, ef: Int, layer: Int,
                             gate: RowGate, building: Bool, scratch: HNSWScratch) {
        let visited = scratch.visited
        visited.reset(count: store.count)
        var candidates = scratch.candidates  // max-heap of ~key: the closest candidate on top
        var results = scratch.results        // max-heap of key: the farthest result on top
        candidates.removeAll()
        results.removeAll()
        visited.mark(entry)
        candidates.push(~HeapKey.make(entryDistance, entry))
        if building || gate.isOpen || gate.admits(UInt32(entry)) { results.push(HeapKey.make(entryDistance, entry)) }
        var bound: Float = results.count > 0 ? entryDistance : .infinity
        let buf = scratch.linkBuffer, dist = scratch.distanceBuffer
        var expanded = 0
        while candidates.count > 0 {
            // A query's walk stops when its task is cancelled (checked every 1,024 expansions;
            // the caller then throws). Index builds are never cancelled half-way.
            expanded &+= 1
            if !building, expanded & 1023 == 0, SearchDeadline.shouldStop { break }
            let top = ~candidates.top
            let d = HeapKey.distance(top)
            if d > bound && results.count >= ef { break }
            candidates.pop()
            let node = HeapKey.id(top)
            // Gather the unvisited neighbours, then score them in one batch (with prefetch).
            let l = links(node, layer)
            if building { vk_spin_lock(nodeLocks + node) }
            let n = Int(l[0])
            var fresh = 0
            for i in 0..<n {
                let nb = l[1 + i]
                if !visited.testAndMark(Int(nb)) {
                    buf[fresh] = nb
                    fresh += 1
                }
            }
            if building { vk_spin_unlock(nodeLocks + node) }
            if fresh == 0 { continue }
            distances(q, buf, fresh, dist)
            for i in 0..<fresh {
                let dd = dist[i]
                guard results.count < ef || dd < bound else { continue }
                let key = HeapKey.make(dd, Int(buf[i]))
                candidates.push(~key)
                if building || gate.isOpen || gate.admits(buf[i]) {
                    results.push(key)
                    if results.count > ef { results.pop() }
                    bound = HeapKey.distance(results.top)
                }
            }
        }
        scratch.candidates = candidates
        scratch.results = results
    }

    func search(_ query: [Float], parameters: SearchParameters) throws -> [Neighbor] {
        try parameters.validate()
        let q = try input.query(query)
        return lock.read {
            let live = store.count - tombstones.setCount
            guard live > 0, entryPoint >= 0 else { return [] }
            return RowGate.with(filter: parameters.filter, tombstones: tombstones) { gate in
                q.withUnsafeBufferPointer { qb in
                    let qp = qb.baseAddress!
                    let small = parameters.prefersExactScan(live: live, default: spec.filterExactFraction)
                    if parameters.exact || small {
                        return exactScan(query: qp, store: store, rows: store.count, kernel: kernel, gate: gate,
                                         filterCount: parameters.filter?.count, k: parameters.k)
                    }
                    let ef = max(parameters.ef ?? spec.efSearch, parameters.k)
                    return scratchPool.withScratch { scratch in
                        scratch.ensure(nodes: store.count)
                        var current = entryPoint
                        var d = distance(qp, store.row(current))
                        var layer = maxLevel
                        while layer > 0 {
                            (current, d) = greedy(qp, from: current, startDistance: d, layer: layer, locking: false,
                                                  scratch: scratch)
                            layer -= 1
                        }
                        searchLayer(qp, entry: current, entryDistance: d, ef: ef, layer: 0, gate: gate, building: false,
                                    scratch: scratch)
                        var results = scratch.results
                        while results.count > parameters.k { results.pop() }
                        var out = [Neighbor](repeating: Neighbor(id: 0, score: 0), count: results.count)
                        var i = results.count - 1
                        while results.count > 0 {
                            let key = results.top
                            results.pop()
                            let dist = HeapKey.distance(key)
                            out[i] = Neighbor(id: UInt32(HeapKey.id(key)), score: -dist)
                            i -= 1
                        }
                        scratch.results = results
                        return out
                    }
                }
            }
        }
    }

    // MARK: insert

    func add(_ vectors: UnsafeBufferPointer<Float>) throws -> Range<UInt32> {
        let rows = try input.validate(vectors)
        return try lock.write {
            let start = store.count
            guard start + rows <= Int(UInt32.max) else {
                throw EngineError.capacityExceeded("adding \(rows) vectors to \(start) exceeds the \(UInt32.max) ids of an index")
            }
            guard rows > 0 else { return UInt32(start)..<UInt32(start) }
            store.append(vectors.baseAddress!, rows: rows)
            if metric == .cosine {
                for r in start..<(start + rows) { normalize(store.row(r), dimension) }
            }
            grow(to: store.count)
            tombstones.grow(to: store.count)
            for id in start..<store.count {
                let level = randomLevel(id)
                levels[id] = UInt8(level)
                if level > 0 {
                    let size = level * (maxM + 1)
                    let block = UnsafeMutablePointer<UInt32>.allocate(capacity: size)
                    block.initialize(repeating: 0, count: size)
                    upper[id] = block
                }
            }
            var first = start
            if entryPoint < 0 {
                entryPoint = start
                maxLevel = Int(levels[start])
                first += 1
            }
            let end = store.count
            parallelFor(end - first, threads: spec.threadCount, chunk: 8) { i in
                scratchPool.withScratch { scratch in
                    scratch.ensure(nodes: end)
                    insert(first + i, scratch: scratch)
                }
            }
            return UInt32(start)..<UInt32(end)
        }
    }

    func build(from vectors: UnsafeBufferPointer<Float>) throws -> Range<UInt32> { try add(vectors) }

    private func insert(_ id: Int, scratch: HNSWScratch) {
        let q = UnsafePointer(store.row(id))
        let level = Int(levels[id])
        // A node that raises the top layer holds the top-layer lock for its whole insert,
        // so no other insert sees a half-linked entry point (as hnswlib does).
        var (ep, top) = entryLock.withLock { (entryPoint, maxLevel) }
        let raisesTop = level > top
        if raisesTop {
            topLayerLock.lock()
            (ep, top) = entryLock.withLock { (entryPoint, maxLevel) }
        }
        defer {
            if raisesTop { topLayerLock.unlock() }
        }
        var current = ep
        var d = distance(q, store.row(current))
        var layer = top
        while layer > level {
            (current, d) = greedy(q, from: current, startDistance: d, layer: layer, locking: true, scratch: scratch)
            layer -= 1
        }
        layer = min(level, top)
        let open = RowGate(allow: nil, allowCapacity: 0, dead: nil, deadWords: 0)
        while layer >= 0 {
            searchLayer(q, entry: current, entryDistance: d, ef: spec.efConstruction, layer: layer, gate: open,
                        building: true, scratch: scratch)
            // Results, closest first, without the node itself.
            var results = scratch.results
            var found = scratch.sortedBuffer
            found.removeAll(keepingCapacity: true)
            while results.count > 0 {
                let key = results.top
                results.pop()
                if HeapKey.id(key) != id { found.append(key) }
            }
            scratch.results = results
            found.reverse()
            let selected = selectNeighbors(found, max: maxM)
            scratch.sortedBuffer = found
            let own = links(id, layer)
            vk_spin_lock(nodeLocks + id)
            own[0] = UInt32(selected.count)
            for (i, key) in selected.enumerated() { own[1 + i] = UInt32(HeapKey.id(key)) }
            vk_spin_unlock(nodeLocks + id)
            let cap = layer == 0 ? maxM0 : maxM
            for key in selected { connect(HeapKey.id(key), to: id, layer: layer, cap: cap) }
            if let closest = found.first {
                current = HeapKey.id(closest)
                d = HeapKey.distance(closest)
            }
            layer -= 1
        }
        if level > top {
            entryLock.withLock {
                if level > maxLevel {
                    entryPoint = id
                    maxLevel = level
                }
            }
        }
    }

    /// Held by an insert that raises the top layer (see `insert`).
    private let topLayerLock = Lock()

    /// Adds `new` to the links of `node` on `layer`, or, when full, keeps the best
    /// `cap` of old links + new by the selection heuristic.
    private func connect(_ node: Int, to new: Int, layer: Int, cap: Int) {
        let l = links(node, layer)
        vk_spin_lock(nodeLocks + node)
        defer { vk_spin_unlock(nodeLocks + node) }
        let n = Int(l[0])
        for i in 0..<n where Int(l[1 + i]) == new { return }
        if n < cap {
            l[1 + n] = UInt32(new)
            l[0] = UInt32(n + 1)
            return
        }
        let base = UnsafePointer(store.row(node))
        var keys: [UInt64] = []
        keys.reserveCapacity(n + 1)
        keys.append(HeapKey.make(distance(base, store.row(new)), new))
        for i in 0..<n {
            let other = Int(l[1 + i])
            keys.append(HeapKey.make(distance(base, store.row(other)), other))
        }
        keys.sort()
        let kept = selectNeighbors(keys, max: cap)
        l[0] = UInt32(kept.count)
        for (i, key) in kept.enumerated() { l[1 + i] = UInt32(HeapKey.id(key)) }
    }

    /// The neighbour-selection heuristic: walking candidates closest first, keep one
    /// only if it is closer to the base node than to every node already kept, which
    /// spreads links over directions instead of clustering them. `sorted` holds keys
    /// (distance to the base node, id) in ascending order.
    private func selectNeighbors(_ sorted: [UInt64], max: Int) -> [UInt64] {
        if sorted.count <= max { return sorted }
        var kept: [UInt64] = []
        kept.reserveCapacity(max)
        for key in sorted {
            if kept.count >= max { break }
            let d = HeapKey.distance(key)
            let row = UnsafePointer(store.row(HeapKey.id(key)))
            var good = true
            for k in kept where distance(row, store.row(HeapKey.id(k))) < d {
                good = false
                break
            }
            if good { kept.append(key) }
        }
        return kept
    }

    func delete(_ id: UInt32) {
        lock.write {
            if Int(id) < store.count { tombstones.insert(Int(id)) }
        }
    }

    func isDeleted(_ id: UInt32) -> Bool { lock.read { tombstones.contains(Int(id)) } }

    func write(to path: String) throws {
        try lock.read {
            let n = store.count
            var up: [UInt32] = []
            for i in 0..<n where levels[i] > 0 {
                up.append(contentsOf: UnsafeBufferPointer(start: upper[i], count: Int(levels[i]) * (maxM + 1)))
            }
            try writeIndexFile(
                path: path, kind: kind, metric: metric, dimension: dimension, count: n,
                sections: [
                    IndexFileSection("spec", json: FileInfo(spec: spec, entryPoint: entryPoint, maxLevel: maxLevel)),
                    IndexFileSection("vecs", raw: UnsafeRawBufferPointer(store.buffer)),
                    IndexFileSection("lvls", raw: UnsafeRawBufferPointer(start: levels, count: n)),
                    IndexFileSection("lnk0", raw: UnsafeRawBufferPointer(start: level0, count: n * (maxM0 + 1) * 4)),
                    IndexFileSection("lnku", copying: up),
                    IndexFileSection("dead", copying: tombstones.snapshot(ids: n)),
                ])
        }
    }
}

/// (distance, id) packed in a UInt64 whose unsigned order is the order of distance,
/// then id: the float's bits mapped to an order-preserving UInt32 in the high half.
enum HeapKey {
    @inline(__always) static func make(_ distance: Float, _ id: Int) -> UInt64 {
        let bits = distance.bitPattern
        let ordered = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
        return UInt64(ordered) << 32 | UInt64(UInt32(truncatingIfNeeded: id))
    }

    @inline(__always) static func id(_ key: UInt64) -> Int { Int(UInt32(truncatingIfNeeded: key)) }

    @inline(__always) static func distance(_ key: UInt64) -> Float {
        let ordered = UInt32(key >> 32)
        let bits = ordered & 0x8000_0000 != 0 ? ordered & 0x7FFF_FFFF : ~ordered
        return Float(bitPattern: bits)
    }
}

/// A binary max-heap of UInt64 keys in a growable raw buffer (no ARC or bounds checks
/// on the hot path). A min-heap is a max-heap of complemented keys.
struct KeyHeap {
    private(set) var storage: UnsafeMutablePointer<UInt64>
    private(set) var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        storage = .allocate(capacity: self.capacity)
    }

    func deallocate() { storage.deallocate() }

    @inline(__always) var top: UInt64 { storage[0] }

    @inline(__always) mutating func removeAll() { count = 0 }

    @inline(__always) mutating func push(_ key: UInt64) {
        if count == capacity {
            let bigger = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity * 2)
            bigger.update(from: storage, count: count)
            storage.deallocate()
            storage = bigger
            capacity *= 2
        }
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) >> 1
            let p = storage[parent]
            if p >= key { break }
            storage[i] = p
            i = parent
        }
        storage[i] = key
    }

    @inline(__always) mutating func pop() {
        count -= 1
        guard count > 0 else { return }
        let key = storage[count]
        var i = 0
        while true {
            var child = 2 * i + 1
            if child >= count { break }
            if child + 1 < count && storage[child + 1] > storage[child] { child += 1 }
            if storage[child] <= key { break }
            storage[i] = storage[child]
            i = child
        }
        storage[i] = key
    }
}

/// Visited marks of one search: a tag per node compared with the current generation,
/// so resetting is O(1) except once every 65535 searches.
final class VisitedSet {
    private(set) var tags: UnsafeMutablePointer<UInt16>
    private(set) var capacity: Int
    private var generation: UInt16 = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        tags = .allocate(capacity: self.capacity)
        tags.initialize(repeating: 0, count: self.capacity)
    }

    deinit { tags.deallocate() }

    func reset(count: Int) {
        if count > capacity {
            tags.deallocate()
            capacity = max(count, capacity * 2)
            tags = .allocate(capacity: capacity)
            tags.initialize(repeating: 0, count: capacity)
            generation = 0
        }
        generation &+= 1
        if generation == 0 {
            tags.update(repeating: 0, count: capacity)
            generation = 1
        }
    }

    @inline(__always) func mark(_ i: Int) { tags[i] = generation }

    /// Marks i; returns whether it was already marked.
    @inline(__always) func testAndMark(_ i: Int) -> Bool {
        if tags[i] == generation { return true }
        tags[i] = generation
        return false
    }
}

/// Per-search working memory of HNSW, pooled.
final class HNSWScratch {
    let visited = VisitedSet(capacity: 1024)
    var candidates = KeyHeap(capacity: 256)
    var results = KeyHeap(capacity: 256)
    var sortedBuffer: [UInt64] = []
    let linkBuffer: UnsafeMutablePointer<UInt32>
    let distanceBuffer: UnsafeMutablePointer<Float>

    init(linkCapacity: Int) {
        linkBuffer = .allocate(capacity: linkCapacity)
        distanceBuffer = .allocate(capacity: linkCapacity)
    }

    func ensure(nodes: Int) {
        if visited.capacity < nodes { visited.reset(count: nodes) }
    }

    deinit {
        candidates.deallocate()
        results.deallocate()
        linkBuffer.deallocate()
        distanceBuffer.deallocate()
    }
}
