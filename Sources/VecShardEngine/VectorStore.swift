#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import VecShardPrimitives

/// Allocates `bytes` for a large array: 64-byte aligned, and from 8 MiB on 2 MiB aligned
/// with transparent huge pages requested (Linux `madvise`), which cuts the TLB misses of
/// random access (graph walks, filtered scans) over hundreds of MiB. Free with `freeBlock`.
func allocateBlock(bytes: Int) -> UnsafeMutableRawPointer {
    let huge = bytes >= 8 << 20
    var p: UnsafeMutableRawPointer?
    guard posix_memalign(&p, huge ? 2 << 20 : 64, max(bytes, 64)) == 0, let p else {
        fatalError("out of memory allocating \(bytes) bytes")
    }
    #if os(Linux)
    if huge { _ = madvise(p, bytes, 14 /* MADV_HUGEPAGE */) }
    #endif
    return p
}

func freeBlock(_ p: UnsafeMutableRawPointer) { free(p) }

/// A growable row-major matrix of float32 vectors, `dimension` floats per row, in one
/// 64-byte aligned block, or a read-only view of a memory-mapped file region (then
/// the first `append` copies it to memory). Not synchronized: the owning index guards
/// it with its lock. Row pointers stay valid until the next `append`/`reserve`.
final class VectorStore: @unchecked Sendable {
    let dimension: Int
    private(set) var base: UnsafeMutablePointer<Float>
    private(set) var count: Int = 0
    private(set) var capacity: Int = 0
    /// Keeps a mapping alive when `base` points into it; nil when the block is owned.
    private var mapping: MappedFile?

    init(dimension: Int) {
        self.dimension = dimension
        self.base = allocateBlock(bytes: 64).bindMemory(to: Float.self, capacity: 16)
    }

    /// A view of `rows` rows starting at `pointer` inside `mapping`.
    init(dimension: Int, mapped pointer: UnsafePointer<Float>, rows: Int, mapping: MappedFile) {
        self.dimension = dimension
        self.base = UnsafeMutablePointer(mutating: pointer)
        self.count = rows
        self.capacity = rows
        self.mapping = mapping
    }

    deinit {
        if mapping == nil { freeBlock(base) }
    }

    /// True when rows are read from a memory-mapped file rather than owned memory.
    var isMapped: Bool { mapping != nil }

    /// Bytes of owned (anonymous) memory, 0 for a mapped view.
    var ownedBytes: Int { mapping == nil ? capacity * dimension * 4 : 0 }

    @inline(__always) func row(_ i: Int) -> UnsafeMutablePointer<Float> { base + i * dimension }

    func reserve(_ rows: Int) {
        guard rows > capacity || mapping != nil else { return }
        let newCapacity = max(rows, mapping == nil ? capacity + capacity / 2 : count, 16)
        let bytes = max(newCapacity * dimension * 4, 64)
        let block = allocateBlock(bytes: bytes).bindMemory(to: Float.self, capacity: newCapacity * dimension)
        if count > 0 { block.update(from: base, count: count * dimension) }
        if mapping == nil { freeBlock(base) }
        mapping = nil
        base = block
        capacity = newCapacity
    }

    /// Appends `rows` rows read from `source` (rows × dimension floats).
    func append(_ source: UnsafePointer<Float>, rows: Int) {
        reserve(count + rows)
        (base + count * dimension).update(from: source, count: rows * dimension)
        count += rows
    }

    /// The rows as one buffer (count × dimension floats).
    var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: base, count: count * dimension) }
}

/// A set of ids as a growable bitset with a population count. Not synchronized.
final class Bitset: @unchecked Sendable {
    private(set) var words: UnsafeMutablePointer<UInt64>
    private(set) var wordCount: Int = 0
    private(set) var setCount: Int = 0

    init() { words = .allocate(capacity: 1) }
    deinit { words.deallocate() }

    /// Makes room for ids 0..<ids.
    func grow(to ids: Int) {
        let needed = (ids + 63) / 64
        guard needed > wordCount else { return }
        let newCount = max(needed, wordCount * 2, 16)
        let block = UnsafeMutablePointer<UInt64>.allocate(capacity: newCount)
        block.initialize(repeating: 0, count: newCount)
        if wordCount > 0 { block.update(from: words, count: wordCount) }
        words.deallocate()
        words = block
        wordCount = newCount
    }

    @inline(__always) func contains(_ id: Int) -> Bool {
        let w = id >> 6
        return w < wordCount && words[w] & (UInt64(1) << UInt64(id & 63)) != 0
    }

    /// Inserts id; returns false if it was already present.
    @discardableResult func insert(_ id: Int) -> Bool {
        grow(to: id + 1)
        let bit = UInt64(1) << UInt64(id & 63)
        if words[id >> 6] & bit != 0 { return false }
        words[id >> 6] |= bit
        setCount += 1
        return true
    }

    /// The set bits as raw words (for files): ceil(ids/64) words.
    func snapshot(ids: Int) -> [UInt64] {
        let n = (ids + 63) / 64
        return (0..<n).map { $0 < wordCount ? words[$0] : 0 }
    }

    func load(_ raw: UnsafeBufferPointer<UInt64>) {
        grow(to: raw.count * 64)
        for (i, w) in raw.enumerated() { words[i] = w }
        setCount = raw.reduce(0) { $0 + $1.nonzeroBitCount }
    }
}

