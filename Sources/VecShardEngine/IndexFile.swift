#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CVecKernels
import VecShardPrimitives

// Index file layout (version 1), little-endian, every section 64-byte aligned so that
// float and integer arrays can be used in place from a memory mapping:
//
//   offset 0   8 bytes  magic "VSHINDEX"
//          8   UInt32   format version (1)
//         12   UInt32   index kind (IndexKind.fileCode)
//         16   UInt32   metric (DistanceMetric.fileCode)
//         20   UInt32   dimension
//         24   UInt64   count (rows ever added)
//         32   UInt32   number of sections S
//         36   UInt32   reserved (0)
//         40   UInt64   total file length in bytes (detects truncation)
//         48   UInt64   checksum of bytes 0..<48 and of the section table
//         56   8 bytes  reserved (0)
//         64   S × 32   section table: tag (4 ASCII bytes), reserved UInt32, offset UInt64,
//                       length UInt64 (bytes), checksum UInt64 (vk_checksum64 of the bytes)
//   then the sections. A reader verifies the header, the table and, before first use,
//   each section's checksum.

let indexFileMagic: [UInt8] = Array("VSHINDEX".utf8)
let indexFileVersion: UInt32 = 1

/// One named block of an index file: owned bytes, or raw memory the index keeps alive
/// (and unchanged, under its lock) until `writeIndexFile` returns.
struct IndexFileSection {
    let tag: String
    private let owned: [UInt8]?
    private let raw: UnsafeRawBufferPointer?

    init(_ tag: String, raw: UnsafeRawBufferPointer) {
        self.tag = tag
        self.owned = nil
        self.raw = raw
    }

    init<T>(_ tag: String, copying array: [T]) {
        self.tag = tag
        self.owned = array.withUnsafeBytes { Array($0) }
        self.raw = nil
    }

    init<T: Encodable>(_ tag: String, json value: T) {
        self.init(tag, copying: encodeSection(value))
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let raw { return try body(raw) }
        return try owned!.withUnsafeBytes { try body($0) }
    }

    var count: Int { raw?.count ?? owned!.count }
}

private func tagCode(_ tag: String) -> UInt32 {
    let u = Array(tag.utf8)
    precondition(u.count == 4, "section tags are 4 ASCII bytes")
    return UInt32(u[0]) | UInt32(u[1]) << 8 | UInt32(u[2]) << 16 | UInt32(u[3]) << 24
}

private func align64(_ x: Int) -> Int { (x + 63) & ~63 }

/// Writes an index file: header, table, sections, via a temporary file renamed into place.
func writeIndexFile(path: String, kind: IndexKind, metric: DistanceMetric, dimension: Int, count: Int,
                    sections: [IndexFileSection]) throws {
    var header = [UInt8](repeating: 0, count: 64 + sections.count * 32)
    func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { header[offset + i] = b } }
    }
    for (i, b) in indexFileMagic.enumerated() { header[i] = b }
    put(indexFileVersion, at: 8)
    put(kind.fileCode, at: 12)
    put(metric.fileCode, at: 16)
    put(UInt32(dimension), at: 20)
    put(UInt64(count), at: 24)
    put(UInt32(sections.count), at: 32)
    var offset = align64(header.count)
    for (i, s) in sections.enumerated() {
        let e = 64 + i * 32
        put(tagCode(s.tag), at: e)
        put(UInt64(offset), at: e + 8)
        put(UInt64(s.count), at: e + 16)
        let sum = s.withBytes { $0.count == 0 ? 0 : vk_checksum64($0.baseAddress, $0.count, 0) }
        put(sum, at: e + 24)
        offset = align64(offset + s.count)
    }
    put(UInt64(offset), at: 40)
    let tableSum = header.withUnsafeBytes { h -> UInt64 in
        var copy = Array(h)
        for i in 48..<56 { copy[i] = 0 }
        return vk_checksum64(copy, copy.count, 0)
    }
    put(tableSum, at: 48)

    let tmp = path + ".tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw EngineError.io(path: tmp, operation: "create", errno: errno) }
    var closed = false
    defer {
        if !closed { close(fd) }
    }
    func writeAll(_ p: UnsafeRawPointer?, _ n: Int) throws {
        var done = 0
        while done < n {
            let w = write(fd, p! + done, min(n - done, 1 << 30))
            if w < 0 {
                if errno == EINTR { continue }
                unlink(tmp)
                throw EngineError.io(path: tmp, operation: "write", errno: errno)
            }
            done += w
        }
    }
    let zeros = [UInt8](repeating: 0, count: 64)
    try header.withUnsafeBytes { try writeAll($0.baseAddress, $0.count) }
    var position = header.count
    for s in sections {
        let pad = align64(position) - position
        if pad > 0 { try zeros.withUnsafeBytes { try writeAll($0.baseAddress, pad) } }
        position += pad
        if s.count > 0 { try s.withBytes { try writeAll($0.baseAddress, $0.count) } }
        position += s.count
    }
    let pad = align64(position) - position
    if pad > 0 { try zeros.withUnsafeBytes { try writeAll($0.baseAddress, pad) } }
    guard fsync(fd) == 0 else {
        unlink(tmp)
        throw EngineError.io(path: tmp, operation: "fsync", errno: errno)
    }
    close(fd)
    closed = true
    guard rename(tmp, path) == 0 else {
        let e = errno
        unlink(tmp)
        throw EngineError.io(path: path, operation: "rename", errno: e)
    }
}

/// A memory-mapped index file with its header and section table checked.
final class IndexFileReader: @unchecked Sendable {
    let path: String
    let mapping: MappedFile
    let kind: IndexKind
    let metric: DistanceMetric
    let dimension: Int
    let count: Int
    private var table: [UInt32: (offset: Int, length: Int, checksum: UInt64)] = [:]

    init(path: String) throws {
        self.path = path
        do { mapping = try MappedFile(path: path) } catch { throw EngineError.io(path: error.path, operation: error.operation, errno: error.errno) }
        func fail(_ reason: String) -> EngineError { .corruptIndexFile(path: path, reason: reason) }
        guard let base = mapping.base else { throw fail("the file is empty") }
        let size = mapping.size
        func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        guard size >= 64 else { throw fail("\(size) bytes is shorter than the 64-byte header (truncated?)") }
        guard Array(UnsafeRawBufferPointer(start: base, count: 8)) == indexFileMagic else {
            throw fail("not a vecshard index file (bad magic)")
        }
        let version = u32(8)
        guard version == indexFileVersion else {
            throw fail("format version \(version) is not supported (this build reads version \(indexFileVersion))")
        }
        let declared = u64(40)
        guard declared == UInt64(size) else {
            throw fail("file is \(size) bytes but its header says \(declared) (truncated or extended)")
        }
        let sectionCount = Int(u32(32))
        guard sectionCount <= 64, 64 + sectionCount * 32 <= size else {
            throw fail("section table of \(sectionCount) entries does not fit in the file")
        }
        var head = Array(UnsafeRawBufferPointer(start: base, count: 64 + sectionCount * 32))
        for i in 48..<56 { head[i] = 0 }
        guard vk_checksum64(head, head.count, 0) == u64(48) else { throw fail("header checksum mismatch") }
        guard let kind = IndexKind(fileCode: u32(12)) else { throw fail("unknown index kind \(u32(12))") }
        guard let metric = DistanceMetric(fileCode: u32(16)) else { throw fail("unknown metric \(u32(16))") }
        self.kind = kind
        self.metric = metric
        dimension = Int(u32(20))
        guard (1...maxDimension).contains(dimension) else { throw fail("dimension \(dimension) is out of range") }
        guard u64(24) <= UInt64(UInt32.max) else { throw fail("count \(u64(24)) exceeds the id space") }
        count = Int(u64(24))
        for i in 0..<sectionCount {
            let e = 64 + i * 32
            let offset = u64(e + 8), length = u64(e + 16)
            guard offset % 64 == 0, offset <= UInt64(size), length <= UInt64(size) - offset else {
                throw fail("section \(i) lies outside the file")
            }
            table[u32(e)] = (Int(offset), Int(length), u64(e + 24))
        }
    }

    private var verified: Set<UInt32> = []

    /// The bytes of section `tag`, checksum verified. Throws if absent or corrupt.
    func bytes(_ tag: String) throws -> UnsafeRawBufferPointer {
        let code = tagCode(tag)
        guard let entry = table[code] else {
            throw EngineError.corruptIndexFile(path: path, reason: "section \(tag) is missing")
        }
        let buf = UnsafeRawBufferPointer(start: mapping.base! + entry.offset, count: entry.length)
        if !verified.contains(code) {
            let sum = entry.length == 0 ? 0 : vk_checksum64(buf.baseAddress, buf.count, 0)
            guard sum == entry.checksum else {
                throw EngineError.corruptIndexFile(path: path, reason: "section \(tag) checksum mismatch (corrupt)")
            }
            verified.insert(code)
        }
        return buf
    }

    func has(_ tag: String) -> Bool { table[tagCode(tag)] != nil }

    /// Section `tag` as `expected` values of T (throws if its length differs).
    func array<T>(_ tag: String, of: T.Type, count expected: Int) throws -> UnsafeBufferPointer<T> {
        let b = try bytes(tag)
        guard b.count == expected * MemoryLayout<T>.stride else {
            throw EngineError.corruptIndexFile(
                path: path, reason: "section \(tag) has \(b.count) bytes, expected \(expected * MemoryLayout<T>.stride)")
        }
        guard expected > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: b.baseAddress!.assumingMemoryBound(to: T.self), count: expected)
    }

    /// Section `tag` as a whole number of T values.
    func array<T>(_ tag: String, of: T.Type) throws -> UnsafeBufferPointer<T> {
        let b = try bytes(tag)
        guard b.count % MemoryLayout<T>.stride == 0 else {
            throw EngineError.corruptIndexFile(path: path, reason: "section \(tag) has a ragged length \(b.count)")
        }
        return try array(tag, of: T.self, count: b.count / MemoryLayout<T>.stride)
    }

    func decode<T: Decodable>(_ tag: String, as: T.Type) throws -> T {
        let b = try bytes(tag)
        do {
            return try JSONDecoder().decode(T.self, from: Data(b))
        } catch {
            throw EngineError.corruptIndexFile(path: path, reason: "section \(tag) does not decode: \(error)")
        }
    }

    func corrupt(_ reason: String) -> EngineError { .corruptIndexFile(path: path, reason: reason) }
}

/// Encodes a Codable value as JSON bytes for a section.
func encodeSection<T: Encodable>(_ value: T) -> [UInt8] {
    // Encoding our own plain structs cannot fail.
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return Array(try! encoder.encode(value))
}

