import VecShardPrimitives
import VecShardSchema
/// What one WAL record does to a collection. Records are replayed in LSN order; replaying
/// a record twice leaves the same state as once (an item applies only when its version is
/// newer than what the collection holds for its id), so recovery may replay records a sealed
/// segment already covers.
///
/// `versions` (docs/ARCHITECTURE.md, "Versioned points"): one version for the whole record (a
/// live write), one per point or id (changes copied from a peer), or none: a record written
/// before versions existed, whose items count as version 0 (they always apply, in log order,
/// as they did then).
enum WALOperation: Sendable, Equatable {
    /// Insert or replace these points (in order: a later duplicate id wins).
    case upsert([Point], versions: [UInt64])
    /// Delete these ids (missing ids are ignored, but their tombstones are kept).
    case delete([String], versions: [UInt64])

    static func upsert(_ points: [Point]) -> WALOperation { .upsert(points, versions: []) }
    static func delete(_ ids: [String]) -> WALOperation { .delete(ids, versions: []) }

    /// The version of item `i`: one version for every item (a live write), one per item (changes
    /// copied from a peer), or none (0, a record from before versions).
    @inline(__always) static func version(_ versions: [UInt64], _ i: Int) -> UInt64 {
        versions.count > 1 ? versions[i] : versions.first ?? 0
    }
}

/// One record of a collection's write-ahead log: an operation and its log sequence
/// number (LSN), which increases by at least 1 from record to record across WAL files.
struct WALRecord: Sendable, Equatable {
    var lsn: UInt64
    var operation: WALOperation
}

/// The byte layout of WAL records (all integers little-endian):
///
///     offset 0   u32  magic 0x52_4C_57_56 ("VWLR")
///            4   u32  payload length in bytes (at most `maxPayloadBytes`)
///            8   u64  LSN
///           16   u64  xxHash64 of (bytes 0..<16, then the u64 xxHash64 of the payload)
///           24   payload: u8 kind (1 upsert, 2 delete, 3 versioned upsert, 4 versioned delete), then
///                upsert: u32 dimension, u32 count, count × (string id, dimension × f32, metadata)
///                delete: u32 count, count × string id
///                kinds 3 and 4: the body of 1 or 2, then u32 n (1 or count), n × u64 version
///
/// A string is u32 length + UTF-8 bytes; metadata is as `ByteWriter.metadata`. A record is
/// valid only if all of it is present and its checksum matches, so a torn write (a prefix
/// of a record) or garbage after the last record is detected.
enum WALRecordCodec {
    static let magic: UInt32 = 0x524C_5756
    static let headerBytes = 24
    /// Largest payload accepted (bytes); bounds what a garbage length field can ask for.
    static let maxPayloadBytes = 1 << 30

    static func encode(_ record: WALRecord) -> [UInt8] {
        let payload = encodePayload(record.operation)
        return frame(lsn: record.lsn, payload: payload, payloadHash: XXH64.hash(payload))
    }

    /// The payload of an operation; writers encode it (and hash it) before they queue, so
    /// the group-commit leader only frames it.
    static func encodePayload(_ operation: WALOperation, reusing buffer: consuming [UInt8] = []) -> [UInt8] {
        var payload = ByteWriter(reusing: consume buffer, capacity: payloadCapacity(operation))
        switch operation {
        case let .upsert(points, versions):
            precondition(versions.count <= 1 || versions.count == points.count)
            payload.u8(versions.isEmpty ? 1 : 3)
            payload.int(UInt32(points.first?.vector.count ?? 0))
            payload.int(UInt32(points.count))
            for p in points {
                payload.string(p.id)
                payload.floats(p.vector)
                payload.metadata(p.metadata, sorted: false)
            }
            if !versions.isEmpty { payload.int(UInt32(versions.count)) }
            for v in versions { payload.int(v) }
        case let .delete(ids, versions):
            precondition(versions.count <= 1 || versions.count == ids.count)
            payload.u8(versions.isEmpty ? 2 : 4)
            payload.int(UInt32(ids.count))
            for id in ids { payload.string(id) }
            if !versions.isEmpty { payload.int(UInt32(versions.count)) }
            for v in versions { payload.int(v) }
        }
        return payload.bytes
    }

    /// The exact payload size (so encoding never reallocates; vectors are copied as raw bytes).
    static func payloadCapacity(_ operation: WALOperation) -> Int {
        switch operation {
        case let .upsert(points, versions):
            var n = 9 + 8 * versions.count + (versions.isEmpty ? 0 : 4)
            for p in points {
                n += 4 + p.id.utf8.count + 4 * p.vector.count + 2
                for (key, value) in p.metadata {
                    n += 4 + key.utf8.count + 1
                    switch value {
                    case let .string(s): n += 4 + s.utf8.count
                    case .int, .double: n += 8
                    case .bool: n += 1
                    }
                }
            }
            return n
        case let .delete(ids, versions):
            return ids.reduce(5 + 8 * versions.count + (versions.isEmpty ? 0 : 4)) { $0 + 4 + $1.utf8.count }
        }
    }

    /// The 24-byte header of a record with this LSN and payload.
    static func header(lsn: UInt64, payloadCount: Int, payloadHash: UInt64) -> [UInt8] {
        var out = ByteWriter(capacity: headerBytes)
        out.int(magic)
        out.int(UInt32(payloadCount))
        out.int(lsn)
        out.int(payloadHash)
        let sum = out.bytes.withUnsafeBytes { XXH64.hash($0) }
        var fixed = Array(out.bytes[0..<16])
        withUnsafeBytes(of: sum.littleEndian) { fixed.append(contentsOf: $0) }
        return fixed
    }

    /// Writes the 24-byte header of a record at `p` (same bytes as `header`).
    static func writeHeader(into p: UnsafeMutableRawPointer, lsn: UInt64, payloadCount: Int, payloadHash: UInt64) {
        p.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: UInt32(payloadCount).littleEndian, toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: lsn.littleEndian, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: payloadHash.littleEndian, toByteOffset: 16, as: UInt64.self)
        let sum = XXH64.hash(UnsafeRawBufferPointer(start: p, count: 24))
        p.storeBytes(of: sum.littleEndian, toByteOffset: 16, as: UInt64.self)
    }

    static func frame(lsn: UInt64, payload: [UInt8], payloadHash: UInt64) -> [UInt8] {
        header(lsn: lsn, payloadCount: payload.count, payloadHash: payloadHash) + payload
    }

    /// The outcome of reading one record at an offset.
    enum Decoded: Equatable {
        /// A whole, valid record of `length` bytes.
        case record(WALRecord, length: Int)
        /// A whole record whose checksums match, payload not decoded (asked not to).
        case verified(lsn: UInt64, length: Int)
        /// The bytes end inside a record (a torn write) or exactly at `offset` (`end`).
        case end
        case torn(String)
        /// The bytes at offset are not a valid record (garbage, a corrupted write).
        case corrupt(String)
    }

    /// `decodeAbove`: records with an LSN at or below it are checked (checksums) but their
    /// payload is not decoded (`verified`); recovery skips them anyway.
    static func decode(_ bytes: UnsafeRawBufferPointer, at offset: Int, decodeAbove: UInt64? = nil) -> Decoded {
        let left = bytes.count - offset
        if left == 0 { return .end }
        if left < headerBytes { return .torn("\(left) bytes at offset \(offset) are shorter than a record header") }
        var r = ByteReader(bytes, offset: offset)
        let m = try! r.int(UInt32.self)
        let length = Int(try! r.int(UInt32.self))
        let lsn = try! r.int(UInt64.self)
        let sum = try! r.int(UInt64.self)
        guard m == magic else { return .corrupt("bad record magic at offset \(offset)") }
        guard length <= maxPayloadBytes else { return .corrupt("record length \(length) at offset \(offset) is above the limit") }
        guard length <= left - headerBytes else {
            return .torn("record at offset \(offset) needs \(length) payload bytes, \(left - headerBytes) present")
        }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[(offset + headerBytes)..<(offset + headerBytes + length)])
        var check = Array(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + 16)]))
        withUnsafeBytes(of: XXH64.hash(payload).littleEndian) { check.append(contentsOf: $0) }
        guard XXH64.hash(check) == sum else { return .corrupt("checksum mismatch in record at offset \(offset)") }
        if let decodeAbove, lsn <= decodeAbove { return .verified(lsn: lsn, length: headerBytes + length) }
        do {
            let op = try decodePayload(payload)
            return .record(WALRecord(lsn: lsn, operation: op), length: headerBytes + length)
        } catch {
            return .corrupt("record at offset \(offset) does not decode: \(error)")
        }
    }

    static func decodePayload(_ payload: UnsafeRawBufferPointer) throws -> WALOperation {
        var r = ByteReader(payload)
        func versions(_ r: inout ByteReader, _ count: Int, _ versioned: Bool) throws -> [UInt64] {
            guard versioned else { return [] }
            let n = Int(try r.int(UInt32.self))
            guard n == 1 || n == count else { throw MalformedBytes(description: "\(n) versions for \(count) items") }
            var out: [UInt64] = []
            out.reserveCapacity(min(n, 1 << 20))
            for _ in 0..<n { out.append(try r.int(UInt64.self)) }
            return out
        }
        switch try r.u8() {
        case let kind where kind == 1 || kind == 3:
            let dim = Int(try r.int(UInt32.self))
            let count = Int(try r.int(UInt32.self))
            var points: [Point] = []
            points.reserveCapacity(min(count, 1 << 20))
            for _ in 0..<count {
                let id = try r.string()
                let v = try r.floats(dim)
                points.append(Point(id: id, vector: v, metadata: try r.metadata()))
            }
            let v = try versions(&r, count, kind == 3)
            guard r.isAtEnd else { throw MalformedBytes(description: "\(r.remaining) trailing bytes") }
            return .upsert(points, versions: v)
        case let kind where kind == 2 || kind == 4:
            let count = Int(try r.int(UInt32.self))
            var ids: [String] = []
            for _ in 0..<count { ids.append(try r.string()) }
            let v = try versions(&r, count, kind == 4)
            guard r.isAtEnd else { throw MalformedBytes(description: "\(r.remaining) trailing bytes") }
            return .delete(ids, versions: v)
        case let kind:
            throw MalformedBytes(description: "unknown record kind \(kind)")
        }
    }
}

/// The header of a WAL file (32 bytes): magic "VSHWAL01", u32 version 1, u32 reserved,
/// u64 LSN of the first record the file may hold, u64 xxHash64 of bytes 0..<24.
enum WALFileHeader {
    static let bytes = 32
    static let magic: [UInt8] = Array("VSHWAL01".utf8)

    static func encode(firstLSN: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: bytes)
        w.raw(magic)
        w.int(UInt32(1))
        w.int(UInt32(0))
        w.int(firstLSN)
        w.int(w.bytes.withUnsafeBytes { XXH64.hash($0) })
        return w.bytes
    }

    /// The first LSN, or nil when the header is missing, torn or corrupt.
    static func decode(_ b: UnsafeRawBufferPointer) -> UInt64? {
        guard b.count >= bytes, Array(b[0..<8]) == magic else { return nil }
        var r = ByteReader(b, offset: 8)
        guard (try? r.int(UInt32.self)) == 1 else { return nil }
        _ = try? r.int(UInt32.self)
        let first = try! r.int(UInt64.self)
        let sum = try! r.int(UInt64.self)
        return XXH64.hash(UnsafeRawBufferPointer(rebasing: b[0..<24])) == sum ? first : nil
    }
}

/// Reads the records of one WAL file's bytes, in order, and finds where the valid
/// prefix ends. Pure: the recovery shell reads the file, runs the scanner, then cuts the
/// file to `validLength` if the scanner reports a bad tail.
struct WALFileScanner {
    enum Step: Equatable {
        case record(WALRecord)
        /// A valid record at or below `skipThrough`, not decoded.
        case skipped(lsn: UInt64)
        /// No more records. `validLength` is the byte length of the valid prefix; `damage`
        /// says why bytes after it were rejected (nil when the file ends cleanly).
        case end(validLength: Int, damage: String?)
    }

    let bytes: UnsafeRawBufferPointer
    private(set) var offset = WALFileHeader.bytes
    private(set) var firstLSN: UInt64?
    private var lastLSN: UInt64?
    private var done = false

    /// Records with an LSN at or below this are verified but not decoded (`skipped`).
    let skipThrough: UInt64?

    init(_ bytes: UnsafeRawBufferPointer, skipThrough: UInt64? = nil) {
        self.bytes = bytes
        self.skipThrough = skipThrough
        firstLSN = WALFileHeader.decode(bytes)
    }

    mutating func next() -> Step {
        guard !done else { return .end(validLength: offset, damage: nil) }
        guard let firstLSN else {
            done = true
            offset = 0
            return .end(validLength: 0, damage: bytes.isEmpty ? nil : "missing or corrupt file header")
        }
        switch WALRecordCodec.decode(bytes, at: offset, decodeAbove: skipThrough) {
        case let .record(record, length):
            if record.lsn < firstLSN || (lastLSN.map { record.lsn <= $0 } ?? false) {
                done = true
                return .end(validLength: offset, damage: "LSN \(record.lsn) at offset \(offset) is out of order")
            }
            lastLSN = record.lsn
            offset += length
            return .record(record)
        case let .verified(lsn, length):
            if lsn < firstLSN || (lastLSN.map { lsn <= $0 } ?? false) {
                done = true
                return .end(validLength: offset, damage: "LSN \(lsn) at offset \(offset) is out of order")
            }
            lastLSN = lsn
            offset += length
            return .skipped(lsn: lsn)
        case .end:
            done = true
            return .end(validLength: offset, damage: nil)
        case let .torn(reason), let .corrupt(reason):
            done = true
            // Zeros where the next record would start are the preallocated (or block-padded)
            // rest of the file: a clean end for the scanner. Recovery then scans the rest of
            // the file (and later files) for valid records before it believes that: zeros
            // with acknowledged records behind them are damage (see `WALTailDecision`).
            let probe = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(bytes.count, offset + 4096)])
            return .end(validLength: offset, damage: probe.allSatisfy { $0 == 0 } ? nil : reason)
        }
    }
}
