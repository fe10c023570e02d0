#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import VecShardEngine
import VecShardPrimitives
import VecShardSchema

/// Where a stored row lives: a segment and its row (the engine's internal id there).
struct RowLocation: Sendable, Hashable {
    var segment: UInt64
    var row: UInt32
}

/// The build state of a segment as `describe` reports it.
public enum SegmentState: String, Sendable, Codable {
    /// In memory, taking writes, covered by the WAL, searched with a FLAT index.
    case growing
    /// Frozen (no more writes), still searched in memory while its files and index are built.
    case sealing
    /// Immutable files on disk with their index, named by the manifest.
    case sealed
}

/// What every segment offers to a search and to point reads. Rows are 0..<count;
/// accessors must only be called for rows a snapshot made visible.
protocol Segment: AnyObject, Sendable {
    var id: UInt64 { get }
    var index: any VectorIndex { get }
    func pointID(at row: UInt32) -> String
    /// The version of the write that stored the row (0 for rows written before versions).
    func version(at row: UInt32) -> UInt64
    func metadata(at row: UInt32) -> Metadata
    func vector(at row: UInt32) -> [Float]
    /// Rows below `limit` whose metadata matches `filter` (ascending); nil for an empty filter.
    func candidates(matching filter: MetadataFilter, below limit: Int) -> [UInt32]?
    var memoryBytes: Int { get }
    /// The index's best rows among rows 0..<visibleRows (`parameters.filter` applies too).
    func search(_ query: [Float], parameters: SearchParameters, visibleRows: Int) throws -> [Neighbor]
}

extension Segment {
    /// Immutable segments: every row of the index is visible.
    func search(_ query: [Float], parameters: SearchParameters, visibleRows: Int) throws -> [Neighbor] {
        try index.search(query, parameters: parameters)
    }
}

/// The in-memory segment that takes writes: ids, vectors as given, metadata, the
/// incremental metadata index and a FLAT engine index (searchable at once). Appends come
/// from the WAL's single applier; reads (any thread) take the segment's lock briefly.
///
/// The vectors live only in the engine's `GrowingFlatIndex` (fixed chunks that never move):
/// each point's vector is copied once, from the point into its final place, and searches
/// scan the published rows while the applier appends after them.
final class GrowingSegment: Segment, @unchecked Sendable {
    let id: UInt64
    let dimension: Int
    let flat: GrowingFlatIndex
    var index: any VectorIndex { flat }
    private struct Rows {
        var ids: [String] = []
        var versions: [UInt64] = []
        var metadata: [Metadata] = []
        var bytes = 0
        /// A background indexing pass is queued or running.
        var indexingScheduled = false
    }
    private let rows = Locked(Rows())

    /// The metadata index of rows 0..<indexed. Rows after them are indexed in the
    /// background (off the write path), or at once by a filtered read or the seal that
    /// needs them. Its own lock, taken before `rows` (never after): indexing copies a slice
    /// of metadata under `rows` briefly and builds postings under this one, so appends
    /// never wait for it.
    private struct MetadataIndex {
        var postings = MetadataPostings()
        var indexed = 0
    }
    private let metadataIndex = Locked(MetadataIndex())
    /// Indexes the metadata of appended rows in the background, for every growing segment.
    private static let indexer = DispatchQueue(label: "vecshard.segment.postings", qos: .utility)
    /// Rows indexed per step (per hold of the index lock) by the background indexer.
    private static let indexingStep = 1024

    init(id: UInt64, dimension: Int, metric: DistanceMetric) throws {
        self.id = id
        self.dimension = dimension
        flat = GrowingFlatIndex(metric: metric, dimension: dimension)
    }

    var count: Int { rows.withLock { $0.ids.count } }
    /// Approximate bytes held (the seal threshold compares against this): vectors, ids,
    /// metadata.
    var bytes: Int { rows.withLock { $0.bytes } }

    /// Appends validated points with their versions (empty: all 0); returns the row of the
    /// first. Only the WAL applier calls it.
    func append(_ points: ArraySlice<Point>, versions: [UInt64]) -> UInt32 {
        let n = points.count
        let base = points.startIndex
        let dimension = self.dimension
        // Rows past the published ones are invisible to readers until the collection
        // publishes them, so the vectors are written without holding the segment's lock.
        let first = flat.appendRows(n) { i, destination in
            points[base + i].vector.withUnsafeBufferPointer { destination.update(from: $0.baseAddress!, count: dimension) }
        }
        let schedule = rows.withLock { r -> Bool in
            precondition(r.ids.count == Int(first), "growing segment \(id): rows and vectors out of step")
            r.ids.append(contentsOf: points.lazy.map(\.id))
            if versions.isEmpty {
                r.versions.append(contentsOf: repeatElement(0, count: n))
            } else {
                r.versions.append(contentsOf: versions)
            }
            r.metadata.append(contentsOf: points.lazy.map(\.metadata))
            var bytes = 0
            for p in points { bytes += dimension * 4 + p.id.utf8.count + 32 + p.metadata.count * 48 }
            r.bytes += bytes
            guard !r.indexingScheduled else { return false }
            r.indexingScheduled = true
            return true
        }
        if schedule { Self.indexer.async { [weak self] in self?.indexInBackground() } }
        return first
    }

    /// Indexes up to `limit` more appended rows (call with the index lock held). Returns
    /// false when every appended row is indexed; `finishing` then also ends the background
    /// pass (atomically with that check, so an append after it schedules a new one).
    private func indexMore(_ index: inout MetadataIndex, limit: Int, finishing: Bool) -> Bool {
        let start = index.indexed
        // Copied out, not sliced: a slice would share the rows' array buffer, and the next
        // append would then copy the whole array.
        let batch = rows.withLock { r -> [Metadata] in
            let end = start + min(limit, r.metadata.count - start)
            if end == start, finishing { r.indexingScheduled = false }
            return Array(r.metadata[start..<end])
        }
        if batch.isEmpty { return false }
        for (i, m) in batch.enumerated() where !m.isEmpty { index.postings.add(row: UInt32(start + i), m) }
        index.indexed = start + batch.count
        return true
    }

    /// The background pass: a step at a time until every appended row is indexed.
    private func indexInBackground() {
        while metadataIndex.withLock({ indexMore(&$0, limit: Self.indexingStep, finishing: true) }) {}
    }

    /// Runs body with the postings of every row appended so far.
    private func withCurrentPostings<T>(_ body: (MetadataPostings) -> T) -> T {
        metadataIndex.withLock { index in
            while indexMore(&index, limit: Int.max, finishing: false) {}
            return body(index.postings)
        }
    }

    func pointID(at row: UInt32) -> String { rows.withLock { $0.ids[Int(row)] } }
    func version(at row: UInt32) -> UInt64 { rows.withLock { $0.versions[Int(row)] } }
    /// Ids and versions of rows 0..<limit (one lock hold; for scans of changes).
    func idsAndVersions(below limit: Int) -> ([String], [UInt64]) {
        rows.withLock { (Array($0.ids[0..<limit]), Array($0.versions[0..<limit])) }
    }
    func metadata(at row: UInt32) -> Metadata { rows.withLock { $0.metadata[Int(row)] } }
    func vector(at row: UInt32) -> [Float] { flat.vector(at: row) }
    func candidates(matching filter: MetadataFilter, below limit: Int) -> [UInt32]? {
        guard !filter.isEmpty else { return nil }
        return withCurrentPostings { $0.rows(matching: filter, below: limit) }
    }
    var memoryBytes: Int { rows.withLock { $0.bytes } }

    /// Searches only the first `visibleRows` rows (rows staged after them stay hidden).
    func search(_ query: [Float], parameters: SearchParameters, visibleRows: Int) throws -> [Neighbor] {
        try flat.search(query, parameters: parameters, rows: visibleRows)
    }

    /// Everything needed to write the segment's files; call only once the segment is frozen.
    func frozenContents() -> SegmentContents {
        // Frozen: no more appends, so the postings and the rows read below agree.
        let postings = withCurrentPostings { $0 }
        return rows.withLock { r in
            let n = r.ids.count
            let vectors = [Float](unsafeUninitializedCapacity: n * dimension) { buf, count in
                if n > 0 { flat.copyRows(n, into: buf.baseAddress!) }
                count = n * dimension
            }
            return SegmentContents(ids: r.ids, versions: r.versions, vectors: vectors, metadata: r.metadata, postings: postings)
        }
    }
}

/// The rows of a segment about to be written to files.
struct SegmentContents {
    var ids: [String]
    /// Per row, the version of the write that stored it.
    var versions: [UInt64]
    /// Row-major, ids.count × dimension floats, as given (not normalized).
    var vectors: [Float]
    var metadata: [Metadata]
    var postings: MetadataPostings
}

/// What `segment.json` records about a sealed segment.
struct SegmentInfo: Codable, Equatable {
    var id: UInt64
    var rows: Int
    var dimension: Int
    var metric: DistanceMetric
    /// The index actually built (FLAT when the requested index could not train on so few rows).
    var indexKind: IndexKind
    var indexNote: String?
    /// xxHash64 of vectors.f32 (checked by compaction when it reads the vectors back).
    var vectorsChecksum: UInt64
}

/// An immutable segment on disk (`seg-<id>/`): vectors.f32 (memory-mapped, read for
/// point reads, returned vectors and compaction), ids.bin (loaded), versions.bin (loaded;
/// absent in segments sealed before versions existed: all rows version 0), metadata.bin
/// (memory-mapped, decoded per hit), postings.bin (loaded) and index.vsi (the engine's
/// index file; IVF_PQ keeps its full vectors mapped, not resident).
final class SealedSegment: Segment, @unchecked Sendable {
    let id: UInt64
    let info: SegmentInfo
    let directory: String
    let index: any VectorIndex
    let ids: [String]
    let versions: [UInt64]
    private let vectors: MappedFile
    private let metadataFile: MappedFile
    /// Start of row i's metadata in metadataFile: offsets[i]..<offsets[i+1].
    private let metadataOffsets: UnsafeRawBufferPointer
    private let metadataBase: Int
    let postings: MetadataPostings

    var rows: Int { info.rows }

    static func fileName(_ id: UInt64) -> String { "seg-\(id)" }

    init(directory: String) throws {
        self.directory = directory
        let infoPath = directory + "/segment.json"
        info = try decodeJSONFile(infoPath, as: SegmentInfo.self)
        id = info.id
        vectors = try mapFile(directory + "/vectors.f32")
        guard vectors.size == info.rows * info.dimension * 4 else {
            throw StorageError.corrupt(path: directory + "/vectors.f32", reason: "\(vectors.size) bytes, expected \(info.rows * info.dimension * 4)")
        }
        ids = try Self.readIDs(directory + "/ids.bin", rows: info.rows)
        versions = try Self.readVersions(directory + "/versions.bin", rows: info.rows)
        metadataFile = try mapFile(directory + "/metadata.bin")
        let (offsets, base) = try Self.checkMetadata(metadataFile, rows: info.rows)
        metadataOffsets = offsets
        metadataBase = base
        let postingsPath = directory + "/postings.bin"
        let postingsBytes = try FileIO.read(postingsPath)
        postings = try withVerifiedBody(postingsBytes, path: postingsPath) { r in try MetadataPostings.decode(&r) }
        do {
            index = try loadIndex(from: directory + "/index.vsi")
        } catch {
            throw StorageError.corrupt(path: directory + "/index.vsi", reason: "\(error)")
        }
        guard index.count == info.rows else {
            throw StorageError.corrupt(path: directory + "/index.vsi", reason: "index holds \(index.count) rows, segment \(info.rows)")
        }
    }

    private static func readIDs(_ path: String, rows: Int) throws -> [String] {
        let bytes = try FileIO.read(path)
        return try withVerifiedBody(bytes, path: path) { r in
            let n = Int(try r.int(UInt32.self))
            guard n == rows else { throw MalformedBytes(description: "\(n) ids for \(rows) rows") }
            var out: [String] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try r.string()) }
            return out
        }
    }

    /// versions.bin: u32 rows, rows × u64, u64 xxHash64. A missing file is a segment sealed
    /// before versions: every row has version 0.
    private static func readVersions(_ path: String, rows: Int) throws -> [UInt64] {
        guard FileIO.exists(path) else { return [UInt64](repeating: 0, count: rows) }
        let bytes = try FileIO.read(path)
        return try withVerifiedBody(bytes, path: path) { r in
            let n = Int(try r.int(UInt32.self))
            guard n == rows else { throw MalformedBytes(description: "\(n) versions for \(rows) rows") }
            var out: [UInt64] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try r.int(UInt64.self)) }
            return out
        }
    }

    /// metadata.bin: u32 rows, (rows + 1) × u64 offsets into the blob area, blobs, then
    /// u64 xxHash64 of everything before it.
    private static func checkMetadata(_ file: MappedFile, rows: Int) throws -> (UnsafeRawBufferPointer, Int) {
        let b = file.bytes
        let header = 4 + (rows + 1) * 8
        guard b.count >= header + 8 else { throw StorageError.corrupt(path: file.path, reason: "shorter than its offset table") }
        let body = UnsafeRawBufferPointer(rebasing: b[0..<(b.count - 8)])
        guard XXH64.hash(body) == UInt64(littleEndian: b.loadUnaligned(fromByteOffset: b.count - 8, as: UInt64.self)) else {
            throw StorageError.corrupt(path: file.path, reason: "checksum mismatch")
        }
        guard Int(UInt32(littleEndian: b.loadUnaligned(as: UInt32.self))) == rows else {
            throw StorageError.corrupt(path: file.path, reason: "row count differs from segment.json")
        }
        return (UnsafeRawBufferPointer(rebasing: b[4..<header]), header)
    }

    func pointID(at row: UInt32) -> String { ids[Int(row)] }
    func version(at row: UInt32) -> UInt64 { versions[Int(row)] }

    func metadata(at row: UInt32) -> Metadata {
        let start = Int(UInt64(littleEndian: metadataOffsets.loadUnaligned(fromByteOffset: Int(row) * 8, as: UInt64.self)))
        let end = Int(UInt64(littleEndian: metadataOffsets.loadUnaligned(fromByteOffset: Int(row) * 8 + 8, as: UInt64.self)))
        var r = ByteReader(UnsafeRawBufferPointer(rebasing: metadataFile.bytes[(metadataBase + start)..<(metadataBase + end)]))
        // Verified by checksum at load; a decode failure would be a writer bug.
        return (try? r.metadata()) ?? [:]
    }

    func vector(at row: UInt32) -> [Float] {
        let d = info.dimension
        return [Float](unsafeUninitializedCapacity: d) { buf, n in
            UnsafeMutableRawBufferPointer(buf).copyMemory(
                from: UnsafeRawBufferPointer(rebasing: vectors.bytes[(Int(row) * d * 4)..<((Int(row) + 1) * d * 4)]))
            n = d
        }
    }

    /// Rows rows..<rows+count as one flat buffer (for compaction).
    var vectorBytes: UnsafeRawBufferPointer { vectors.bytes }

    func candidates(matching filter: MetadataFilter, below limit: Int) -> [UInt32]? {
        postings.rows(matching: filter, below: limit)
    }

    /// Resident estimate: the engine's anonymous memory, ids, offsets are mapped (not counted), postings.
    var memoryBytes: Int {
        index.memoryBytes + ids.reduce(0) { $0 + max(16, $1.utf8.count) } + versions.count * 8 + postings.memoryBytes
    }

    var diskBytes: Int { FileIO.diskBytes(directory) }
}

/// Runs `body` on the part of `bytes` before its trailing u64 xxHash64, after checking it.
func withVerifiedBody<T>(_ bytes: [UInt8], path: String, _ body: (inout ByteReader) throws -> T) throws -> T {
    try bytes.withUnsafeBytes { raw in
        guard raw.count >= 8 else { throw StorageError.corrupt(path: path, reason: "\(raw.count) bytes is too short") }
        let bodyBytes = UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 8)])
        guard XXH64.hash(bodyBytes) == UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: raw.count - 8, as: UInt64.self)) else {
            throw StorageError.corrupt(path: path, reason: "checksum mismatch")
        }
        var r = ByteReader(bodyBytes)
        do {
            return try body(&r)
        } catch let e as StorageError {
            throw e
        } catch {
            throw StorageError.corrupt(path: path, reason: "\(error)")
        }
    }
}

/// Writes a sealed segment's files into `<segmentsDirectory>/seg-<id>.tmp`, builds its
/// index there, fsyncs everything and renames the directory to `seg-<id>` (then fsyncs
/// the parent): a crash leaves either no segment or a whole one. The caller publishes it
/// in the manifest; until then recovery deletes it as unlisted.
enum SegmentWriter {
    static func write(id: UInt64, contents c: SegmentContents, dimension: Int, metric: DistanceMetric,
                      spec: IndexSpec, into segmentsDirectory: String) throws -> SealedSegment {
        let final = segmentsDirectory + "/" + SealedSegment.fileName(id)
        let tmp = final + ".tmp"
        FileIO.removeTree(tmp)
        try FileIO.makeDirectory(tmp)
        do {
            let rows = c.ids.count
            try c.vectors.withUnsafeBytes { try FileIO.writeFile(tmp + "/vectors.f32", $0) }
            var ids = ByteWriter(capacity: rows * 24)
            ids.int(UInt32(rows))
            for id in c.ids { ids.string(id) }
            try FileIO.writeFile(tmp + "/ids.bin", sealed(ids))
            precondition(c.versions.count == rows, "a version per row")
            var versions = ByteWriter(capacity: 4 + rows * 8 + 8)
            versions.int(UInt32(rows))
            for v in c.versions { versions.int(v) }
            try FileIO.writeFile(tmp + "/versions.bin", sealed(versions))

            var blobs = ByteWriter(capacity: rows * 32)
            var offsets = ByteWriter(capacity: 4 + (rows + 1) * 8)
            offsets.int(UInt32(rows))
            for m in c.metadata {
                offsets.int(UInt64(blobs.bytes.count))
                blobs.metadata(m)
            }
            offsets.int(UInt64(blobs.bytes.count))
            offsets.raw(blobs.bytes)
            try FileIO.writeFile(tmp + "/metadata.bin", sealed(offsets))

            var postings = ByteWriter()
            c.postings.encode(into: &postings)
            try FileIO.writeFile(tmp + "/postings.bin", sealed(postings))

            let (index, note) = try buildIndex(c.vectors, dimension: dimension, metric: metric, spec: spec)
            do {
                try index.write(to: tmp + "/index.vsi")
            } catch {
                throw StorageError.from(error, collection: "", dimension: dimension)
            }
            let info = SegmentInfo(id: id, rows: rows, dimension: dimension, metric: metric, indexKind: index.kind,
                                   indexNote: note, vectorsChecksum: c.vectors.withUnsafeBytes { XXH64.hash($0) })
            try FileIO.writeFile(tmp + "/segment.json", encodeJSON(info))
            try FileIO.fsyncDirectory(tmp)
            FileIO.removeTree(final)
            try FileIO.rename(tmp, final)
            try FileIO.fsyncDirectory(segmentsDirectory)
        } catch {
            FileIO.removeTree(tmp)
            throw error
        }
        return try SealedSegment(directory: final)
    }

    /// Builds the collection's index over the rows; an IVF index that cannot train on this
    /// few rows falls back to FLAT (exact), noted in segment.json.
    static func buildIndex(_ vectors: [Float], dimension: Int, metric: DistanceMetric,
                           spec: IndexSpec) throws -> (any VectorIndex, String?) {
        do {
            let index = try makeIndex(spec: spec, metric: metric, dimension: dimension)
            if !vectors.isEmpty { _ = try index.build(from: vectors) }
            return (index, nil)
        } catch let error as EngineError {
            switch error {
            case .notTrained, .invalidParameter:
                let flat = try makeIndex(spec: IndexSpec(kind: .flat), metric: metric, dimension: dimension)
                if !vectors.isEmpty { _ = try flat.build(from: vectors) }
                return (flat, "\(spec.kind.rawValue) could not be built (\(error)); FLAT used")
            default:
                throw StorageError.from(error, collection: "", dimension: dimension)
            }
        }
    }

    private static func sealed(_ w: ByteWriter) -> [UInt8] {
        var w = w
        w.int(XXH64.hash(w.bytes))
        return w.bytes
    }
}
