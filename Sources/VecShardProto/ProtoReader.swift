/// Reads protobuf fields from a byte buffer it does not own. Every read is bounds-checked:
/// truncated varints, lengths past the end, wrong wire types, over-deep nesting and oversized
/// counts throw `ProtoError`; nothing traps.
///
/// The buffer must outlive the reader (use `ProtoMessage.init(serializedBytes:)` for a safe entry).
public struct ProtoReader {
    private let base: UnsafeRawPointer?
    private var offset: Int
    private let end: Int
    let limits: ProtoLimits
    let depth: Int

    public init(_ buffer: UnsafeRawBufferPointer, limits: ProtoLimits = ProtoLimits(), depth: Int = 0) {
        base = buffer.baseAddress
        offset = 0
        end = buffer.count
        self.limits = limits
        self.depth = depth
    }

    private init(base: UnsafeRawPointer?, offset: Int, end: Int, limits: ProtoLimits, depth: Int) {
        self.base = base
        self.offset = offset
        self.end = end
        self.limits = limits
        self.depth = depth
    }

    public var isAtEnd: Bool { offset >= end }

    // MARK: tags and primitives

    /// The next field's number and wire type, or nil at the end of the message.
    public mutating func nextField() throws -> (number: Int, type: WireType)? {
        guard offset < end else { return nil }
        let tag = try readRawVarint()
        guard let type = WireType(rawValue: UInt8(tag & 7)) else {
            throw ProtoError(.malformed, "invalid wire type \(tag & 7) in tag \(tag)")
        }
        let number = tag >> 3
        guard number >= 1, number <= 536_870_911 else { throw ProtoError(.malformed, "invalid field number \(number)") }
        return (Int(number), type)
    }

    @inline(__always)
    public mutating func readRawVarint() throws -> UInt64 {
        guard let base else { throw ProtoError.truncated("varint") }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end else { throw ProtoError.truncated("varint") }
            let byte = base.load(fromByteOffset: offset, as: UInt8.self)
            offset += 1
            if shift == 63 && byte > 1 { throw ProtoError(.malformed, "varint longer than 64 bits") }
            result |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return result }
            shift += 7
            if shift > 63 { throw ProtoError(.malformed, "varint longer than 10 bytes") }
        }
    }

    mutating func readRawFixed32() throws -> UInt32 {
        guard let base, end - offset >= 4 else { throw ProtoError.truncated("fixed32") }
        let v = base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        offset += 4
        return UInt32(littleEndian: v)
    }

    mutating func readRawFixed64() throws -> UInt64 {
        guard let base, end - offset >= 8 else { throw ProtoError.truncated("fixed64") }
        let v = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        offset += 8
        return UInt64(littleEndian: v)
    }

    /// The body of a length-delimited field, as a raw slice of the buffer.
    mutating func readLengthDelimited() throws -> UnsafeRawBufferPointer {
        let length = try readRawVarint()
        guard length <= UInt64(end - offset) else { throw ProtoError.truncated("length-delimited field of \(length) bytes") }
        let n = Int(length)
        let slice = UnsafeRawBufferPointer(start: base.map { $0 + offset }, count: n)
        offset += n
        return slice
    }

    private func expect(_ type: WireType, _ expected: WireType, _ what: String) throws {
        guard type == expected else { throw ProtoError(.malformed, "\(what) field has wire type \(type.rawValue), expected \(expected.rawValue)") }
    }

    // MARK: typed reads (the caller passes the wire type it saw)

    public mutating func readUInt64(_ type: WireType) throws -> UInt64 {
        try expect(type, .varint, "uint64")
        return try readRawVarint()
    }

    public mutating func readUInt32(_ type: WireType) throws -> UInt32 {
        try expect(type, .varint, "uint32")
        return UInt32(truncatingIfNeeded: try readRawVarint())
    }

    public mutating func readInt64(_ type: WireType) throws -> Int64 {
        try expect(type, .varint, "int64")
        return Int64(bitPattern: try readRawVarint())
    }

    public mutating func readInt32(_ type: WireType) throws -> Int32 {
        try expect(type, .varint, "int32")
        return Int32(truncatingIfNeeded: Int64(bitPattern: try readRawVarint()))
    }

    public mutating func readSInt64(_ type: WireType) throws -> Int64 {
        try expect(type, .varint, "sint64")
        return zigzagDecode(try readRawVarint())
    }

    public mutating func readBool(_ type: WireType) throws -> Bool {
        try expect(type, .varint, "bool")
        return try readRawVarint() != 0
    }

    public mutating func readFloat(_ type: WireType) throws -> Float {
        try expect(type, .fixed32, "float")
        return Float(bitPattern: try readRawFixed32())
    }

    public mutating func readDouble(_ type: WireType) throws -> Double {
        try expect(type, .fixed64, "double")
        return Double(bitPattern: try readRawFixed64())
    }

    public mutating func readFixed64(_ type: WireType) throws -> UInt64 {
        try expect(type, .fixed64, "fixed64")
        return try readRawFixed64()
    }

    /// A string field; invalid UTF-8 is rejected (proto3 requires valid UTF-8 strings).
    public mutating func readString(_ type: WireType) throws -> String {
        try expect(type, .lengthDelimited, "string")
        let raw = try readLengthDelimited()
        guard raw.count <= limits.maxFieldBytes else {
            throw ProtoError(.resourceExhausted, "string field of \(raw.count) bytes exceeds the limit of \(limits.maxFieldBytes)")
        }
        guard let s = String(validating: raw.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw ProtoError(.malformed, "string field is not valid UTF-8")
        }
        return s
    }

    public mutating func readBytes(_ type: WireType) throws -> [UInt8] {
        try expect(type, .lengthDelimited, "bytes")
        let raw = try readLengthDelimited()
        guard raw.count <= limits.maxFieldBytes else {
            throw ProtoError(.resourceExhausted, "bytes field of \(raw.count) bytes exceeds the limit of \(limits.maxFieldBytes)")
        }
        return Array(raw)
    }

    /// One element (unpacked) or a packed run of `repeated float`, appended to `values`.
    public mutating func readFloats(_ type: WireType, into values: inout [Float]) throws {
        switch type {
        case .fixed32:
            try checkRepeated(values.count + 1)
            values.append(Float(bitPattern: try readRawFixed32()))
        case .lengthDelimited:
            let raw = try readLengthDelimited()
            guard raw.count % 4 == 0 else { throw ProtoError(.malformed, "packed float field of \(raw.count) bytes is not a multiple of 4") }
            try checkRepeated(values.count + raw.count / 4)
            let start = values.count
            values.append(contentsOf: repeatElement(0, count: raw.count / 4))
            values.withUnsafeMutableBytes { dst in
                guard let src = raw.baseAddress, raw.count > 0 else { return }
                (dst.baseAddress! + start * 4).copyMemory(from: src, byteCount: raw.count)
            }
            #if !_endian(little)
            for i in start..<values.count { values[i] = Float(bitPattern: UInt32(littleEndian: values[i].bitPattern)) }
            #endif
        default:
            throw ProtoError(.malformed, "repeated float field has wire type \(type.rawValue)")
        }
    }

    /// One element (unpacked) or a packed run of a repeated varint field.
    public mutating func readVarints(_ type: WireType, into values: inout [UInt64]) throws {
        switch type {
        case .varint:
            try checkRepeated(values.count + 1)
            values.append(try readRawVarint())
        case .lengthDelimited:
            let raw = try readLengthDelimited()
            var inner = ProtoReader(raw, limits: limits, depth: depth)
            while !inner.isAtEnd {
                try checkRepeated(values.count + 1)
                values.append(try inner.readRawVarint())
            }
        default:
            throw ProtoError(.malformed, "repeated varint field has wire type \(type.rawValue)")
        }
    }

    func checkRepeated(_ count: Int) throws {
        if count > limits.maxRepeated {
            throw ProtoError(.resourceExhausted, "repeated field with more than \(limits.maxRepeated) elements")
        }
    }

    // MARK: nested messages and unknown fields

    public mutating func readMessage<M: ProtoMessage>(_ type: WireType, as: M.Type = M.self) throws -> M {
        try expect(type, .lengthDelimited, "message")
        guard depth + 1 <= limits.maxDepth else {
            throw ProtoError(.resourceExhausted, "messages nested deeper than \(limits.maxDepth)")
        }
        let raw = try readLengthDelimited()
        var inner = ProtoReader(raw, limits: limits, depth: depth + 1)
        return try M(from: &inner)
    }

    /// Reads a nested message's fields with `body`, without materializing a type for it (map
    /// entries, oneofs).
    public mutating func readNested(_ type: WireType, _ body: (inout ProtoReader) throws -> Void) throws {
        try expect(type, .lengthDelimited, "message")
        guard depth + 1 <= limits.maxDepth else {
            throw ProtoError(.resourceExhausted, "messages nested deeper than \(limits.maxDepth)")
        }
        let raw = try readLengthDelimited()
        var inner = ProtoReader(raw, limits: limits, depth: depth + 1)
        try body(&inner)
    }

    /// Skips a field this message does not know (forward compatibility).
    public mutating func skip(_ type: WireType, field: Int) throws {
        switch type {
        case .varint: _ = try readRawVarint()
        case .fixed64: _ = try readRawFixed64()
        case .fixed32: _ = try readRawFixed32()
        case .lengthDelimited: _ = try readLengthDelimited()
        case .startGroup:
            guard depth + 1 <= limits.maxDepth else { throw ProtoError(.resourceExhausted, "groups nested deeper than \(limits.maxDepth)") }
            var inner = ProtoReader(base: base, offset: offset, end: end, limits: limits, depth: depth + 1)
            while true {
                guard let (number, innerType) = try inner.nextField() else { throw ProtoError.truncated("group \(field)") }
                if innerType == .endGroup {
                    guard number == field else { throw ProtoError(.malformed, "group \(field) closed by end-group \(number)") }
                    break
                }
                try inner.skip(innerType, field: number)
            }
            offset = inner.offset
        case .endGroup:
            throw ProtoError(.malformed, "unexpected end-group for field \(field)")
        }
    }
}

/// A message encoded and decoded by hand. `init(from:)` must accept fields in any order, repeated
/// singular fields (last one wins), unknown fields (skipped) and both packed and unpacked repeated
/// scalars; `encode(to:)` writes fields in field-number order (the canonical encoding).
public protocol ProtoMessage: Sendable {
    init(from reader: inout ProtoReader) throws
    func encode(to writer: inout ProtoWriter)
}

extension ProtoMessage {
    public init(serializedBytes raw: UnsafeRawBufferPointer, limits: ProtoLimits = ProtoLimits()) throws {
        var reader = ProtoReader(raw, limits: limits)
        self = try Self(from: &reader)
    }

    public init(serializedBytes bytes: [UInt8], limits: ProtoLimits = ProtoLimits()) throws {
        self = try bytes.withUnsafeBytes { try Self(serializedBytes: $0, limits: limits) }
    }

    public func serializedBytes(capacity: Int = 256) -> [UInt8] {
        var writer = ProtoWriter(capacity: capacity)
        encode(to: &writer)
        return writer.bytes
    }
}
