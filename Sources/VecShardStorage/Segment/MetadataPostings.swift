import VecShardEngine
import VecShardPrimitives
import VecShardSchema

/// The secondary index of one segment's metadata: for every field and every string, int
/// or bool value, the rows holding it (ascending). Doubles are not indexed (filters do not
/// take them). A sealed segment builds it once at seal time and stores it; a growing
/// segment extends it as rows arrive (rows come in increasing order, so lists stay sorted).
struct MetadataPostings: Sendable, Equatable {
    /// The rows of one value, ascending: the first inline, the others in `more` (an empty
    /// array allocates nothing, so a value seen once, e.g. a unique id-like field, costs
    /// no allocation of its own).
    struct Rows: Sendable, Equatable {
        var first: UInt32
        var more: [UInt32] = []
        init(_ first: UInt32) { self.first = first }
        init(_ rows: [UInt32]) {
            first = rows[0]
            more = Array(rows.dropFirst())
        }
        var count: Int { 1 + more.count }
        var array: [UInt32] { more.isEmpty ? [first] : [first] + more }
        mutating func append(_ row: UInt32) { more.append(row) }
    }

    private(set) var lists: [String: [MetadataValue: Rows]] = [:]

    mutating func add(row: UInt32, _ metadata: Metadata) {
        for (field, value) in metadata where value.isFilterable {
            Self.add(row, value, to: &lists[field, default: [:]])
        }
    }

    private static func add(_ row: UInt32, _ value: MetadataValue, to values: inout [MetadataValue: Rows]) {
        if let i = values.index(forKey: value) {
            values.values[i].append(row)
        } else {
            values[value] = Rows(row)
        }
    }

    /// Rows matching every condition, ascending; nil when the filter is empty (all rows).
    /// Only rows below `limit` are returned.
    func rows(matching filter: MetadataFilter, below limit: Int) -> [UInt32]? {
        guard var result = evaluate(filter) else { return nil }
        if let last = result.last, Int(last) >= limit {
            result = Array(result.prefix { Int($0) < limit })
        }
        return result
    }

    /// Rows matching `filter`, ascending; nil for a filter that admits every row.
    private func evaluate(_ filter: MetadataFilter) -> [UInt32]? {
        switch filter {
        case let .field(field, condition):
            let matching = Set(condition.values).compactMap { lists[field]?[$0]?.array }
            return matching.count == 1 ? matching[0] : Self.union(matching)
        case let .all(children):
            // Smallest first, so the intersections stay small; an empty one ends it.
            var lists: [[UInt32]] = []
            for child in children {
                guard let rows = evaluate(child) else { continue }
                if rows.isEmpty { return [] }
                lists.append(rows)
            }
            guard !lists.isEmpty else { return nil }
            lists.sort { $0.count < $1.count }
            var result = lists[0]
            for other in lists.dropFirst() {
                result = Self.intersect(result, other)
                if result.isEmpty { return [] }
            }
            return result
        }
    }

    static func union(_ lists: [[UInt32]]) -> [UInt32] {
        var out = lists.flatMap { $0 }
        out.sort()
        var w = 0
        for i in 0..<out.count where i == 0 || out[i] != out[i - 1] {
            out[w] = out[i]
            w += 1
        }
        out.removeLast(out.count - w)
        return out
    }

    static func intersect(_ a: [UInt32], _ b: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        var i = 0, j = 0
        while i < a.count, j < b.count {
            if a[i] == b[j] {
                out.append(a[i]); i += 1; j += 1
            } else if a[i] < b[j] { i += 1 } else { j += 1 }
        }
        return out
    }

    /// Approximate heap bytes (4 per posting plus keys).
    var memoryBytes: Int {
        lists.reduce(0) { acc, field in
            acc + field.key.utf8.count + 64 + field.value.reduce(0) { $0 + 48 + ($1.value.count - 1) * 4 }
        }
    }

    func encode(into w: inout ByteWriter) {
        w.int(UInt32(lists.count))
        for field in lists.keys.sorted() {
            let values = lists[field]!
            w.string(field)
            w.int(UInt32(values.count))
            for (value, rows) in values {
                w.value(value)
                w.int(UInt32(rows.count))
                w.int(rows.first)
                rows.more.withUnsafeBytes { w.raw($0) }
            }
        }
    }

    static func decode(_ r: inout ByteReader) throws -> MetadataPostings {
        var p = MetadataPostings()
        let fields = Int(try r.int(UInt32.self))
        for _ in 0..<fields {
            let field = try r.string()
            let n = Int(try r.int(UInt32.self))
            var values: [MetadataValue: Rows] = [:]
            for _ in 0..<n {
                let value = try r.value()
                let count = Int(try r.int(UInt32.self))
                let raw = try r.bytes(count * 4)
                guard count > 0 else { throw MalformedBytes(description: "a metadata value with no rows") }
                values[value] = Rows([UInt32](unsafeUninitializedCapacity: count) { buf, k in
                    UnsafeMutableRawBufferPointer(buf).copyMemory(from: raw)
                    k = count
                })
            }
            p.lists[field] = values
        }
        return p
    }
}

/// A segment's deleted rows (tombstones, including rows superseded by a later upsert) as
/// a bitset over rows. A value type: a search's snapshot keeps its copy while writers
/// change the collection's (copy on write).
struct DeadRows: Sendable, Equatable {
    private(set) var words: [UInt64] = []
    private(set) var count = 0

    init() {}

    init(words: [UInt64]) {
        self.words = words
        count = words.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    func contains(_ row: UInt32) -> Bool {
        let w = Int(row) >> 6
        return w < words.count && words[w] & (1 << UInt64(row & 63)) != 0
    }

    /// Marks row dead; returns false if it already was.
    @discardableResult mutating func insert(_ row: UInt32) -> Bool {
        let w = Int(row) >> 6
        if w >= words.count { words += [UInt64](repeating: 0, count: max(w + 1 - words.count, words.count)) }
        let bit: UInt64 = 1 << UInt64(row & 63)
        if words[w] & bit != 0 { return false }
        words[w] |= bit
        count += 1
        return true
    }

    /// The allow list of rows 0..<rows that are live and, when given, in `candidates`
    /// (ascending rows). nil when every row is allowed (no dead row, no candidates).
    func allowList(rows: Int, candidates: [UInt32]?) -> AllowList? {
        if let candidates {
            var list = AllowList(capacity: rows)
            for r in candidates where Int(r) < rows && !contains(r) { list.insert(r) }
            return list
        }
        if count == 0 { return nil }
        let n = (rows + 63) / 64
        var live = [UInt64](repeating: ~0, count: n)
        for i in 0..<min(n, words.count) { live[i] = ~words[i] }
        return AllowList(words: live, capacity: rows)
    }

    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: words.count * 8 + 16)
        w.int(UInt64(words.count))
        words.withUnsafeBytes { w.raw($0) }
        w.int(XXH64.hash(w.bytes))
        return w.bytes
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> DeadRows {
        try bytes.withUnsafeBytes { raw in
            guard raw.count >= 16,
                  XXH64.hash(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 8)]))
                    == UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: raw.count - 8, as: UInt64.self))
            else { throw StorageError.corrupt(path: path, reason: "tombstone file checksum mismatch") }
            var r = ByteReader(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 8)]))
            let n = Int(try r.int(UInt64.self))
            guard n * 8 == r.remaining else { throw StorageError.corrupt(path: path, reason: "tombstone file length") }
            var words = [UInt64](repeating: 0, count: n)
            for i in 0..<n { words[i] = try r.int(UInt64.self) }
            return DeadRows(words: words)
        }
    }
}
