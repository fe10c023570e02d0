import VecShardSchema
/// Appends little-endian scalars and length-prefixed strings to a byte array: the
/// encoding of WAL payloads and segment side files.
struct ByteWriter {
    private(set) var bytes: [UInt8]

    init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Writes into `buffer`'s memory (emptied, its capacity kept and grown to `capacity`):
    /// a recycled buffer's pages are already mapped, a fresh large one faults them all in.
    init(reusing buffer: consuming [UInt8], capacity: Int) {
        bytes = consume buffer
        bytes.removeAll(keepingCapacity: true)
        bytes.reserveCapacity(capacity)
    }

    mutating func u8(_ v: UInt8) { bytes.append(v) }

    mutating func int<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func f64(_ v: Double) { int(v.bitPattern) }

    /// u32 byte length + UTF-8 bytes.
    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            int(UInt32(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func floats(_ v: [Float]) {
        v.withUnsafeBytes { raw in
            #if _endian(big)
            for f in v { int(f.bitPattern) }
            #else
            bytes.append(contentsOf: raw)
            #endif
        }
    }

    mutating func raw(_ b: UnsafeRawBufferPointer) { bytes.append(contentsOf: b) }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }

    /// Metadata: u16 field count, then (key string, tag u8, value) in key order, so equal
    /// maps encode to equal bytes.
    /// u16 field count, then (string key, value) per field: in key order when `sorted`
    /// (files whose bytes should not depend on hashing), in the dictionary's order
    /// otherwise (WAL records, which are only ever decoded back into a dictionary).
    mutating func metadata(_ m: Metadata, sorted: Bool = true) {
        int(UInt16(m.count))
        if m.count == 1 || !sorted {
            for (key, v) in m {
                string(key)
                value(v)
            }
            return
        }
        for (key, v) in m.sorted(by: { $0.key < $1.key }) {
            string(key)
            value(v)
        }
    }

    mutating func value(_ v: MetadataValue) {
        switch v {
        case let .string(s): u8(1); string(s)
        case let .int(i): u8(2); int(i)
        case let .double(d): u8(3); f64(d)
        case let .bool(b): u8(4); u8(b ? 1 : 0)
        }
    }
}

/// Thrown by `ByteReader` when the input ends early or holds an impossible value.
struct MalformedBytes: Error, CustomStringConvertible {
    let description: String
}

/// Reads what `ByteWriter` wrote. Every read checks bounds and throws `MalformedBytes`.
struct ByteReader {
    let base: UnsafeRawBufferPointer
    private(set) var offset: Int

    init(_ base: UnsafeRawBufferPointer, offset: Int = 0) {
        self.base = base
        self.offset = offset
    }

    var remaining: Int { base.count - offset }
    var isAtEnd: Bool { offset >= base.count }

    private mutating func take(_ n: Int) throws -> Int {
        guard n >= 0, n <= remaining else { throw MalformedBytes(description: "needs \(n) bytes at offset \(offset), \(remaining) left") }
        defer { offset += n }
        return offset
    }

    mutating func u8() throws -> UInt8 { base[try take(1)] }

    mutating func int<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let o = try take(MemoryLayout<T>.size)
        return T(littleEndian: base.loadUnaligned(fromByteOffset: o, as: T.self))
    }

    mutating func f64() throws -> Double { Double(bitPattern: try int(UInt64.self)) }

    mutating func string() throws -> String {
        let n = Int(try int(UInt32.self))
        let o = try take(n)
        let s = UnsafeRawBufferPointer(rebasing: base[o..<(o + n)])
        return String(decoding: s, as: UTF8.self)
    }

    mutating func floats(_ count: Int) throws -> [Float] {
        let o = try take(count * 4)
        return [Float](unsafeUninitializedCapacity: count) { buf, n in
            if count > 0 {
                UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: base[o..<(o + count * 4)]))
            }
            n = count
        }
    }

    mutating func bytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        let o = try take(count)
        return UnsafeRawBufferPointer(rebasing: base[o..<(o + count)])
    }

    mutating func metadata() throws -> Metadata {
        let n = Int(try int(UInt16.self))
        var m = Metadata(minimumCapacity: n)
        for _ in 0..<n {
            let key = try string()
            m[key] = try value()
        }
        return m
    }

    mutating func value() throws -> MetadataValue {
        switch try u8() {
        case 1: return .string(try string())
        case 2: return .int(try int(Int64.self))
        case 3: return .double(try f64())
        case 4: return .bool(try u8() != 0)
        case let tag: throw MalformedBytes(description: "unknown metadata value tag \(tag)")
        }
    }
}
