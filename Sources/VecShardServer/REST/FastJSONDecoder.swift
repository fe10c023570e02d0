#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Over 500 lines on purpose: the tokenizer, the tree and the Decoder protocol's three container
// types share one cursor and one error path; split, they would expose their internals.

/// A strict JSON (RFC 8259) decoder for the request bodies of the data API, several times faster
/// than Foundation's `JSONDecoder` on what dominates them: arrays of numbers (vectors). Foundation
/// spent about two thirds of an upsert's CPU time decoding the body (perf, 128-d points).
///
/// It parses the body into a small tree (numbers stay byte ranges and are converted only when a
/// field asks for a type: `strtof` for `Float`, `strtod` for `Double`, exact digits for integers),
/// then serves the `Decodable` types through the ordinary `Decoder` protocol. On any failure the
/// caller decodes again with Foundation's `JSONDecoder`; when that fails too, a type or range
/// error of this decoder is reported (it names the field and the range, e.g. a float32 component
/// of 1e39), a syntax error Foundation's.
enum FastJSON {
    static func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        let source = JSONSource(bytes)
        var parser = JSONParser(source: source)
        let root = try parser.parseDocument()
        return try T(from: FastJSONDecoder(value: root, source: source, codingPath: []))
    }
}

/// The body's bytes, kept for converting numbers on demand, followed by a NUL so that `strtof`
/// and `strtod` can read a number in place (a validated JSON number is always followed by a
/// delimiter that ends their scan, or by that NUL).
final class JSONSource {
    let bytes: [UInt8]
    let count: Int
    init(_ buffer: UnsafeRawBufferPointer) {
        var bytes = [UInt8]()
        bytes.reserveCapacity(buffer.count + 1)
        bytes.append(contentsOf: buffer)
        bytes.append(0)
        self.bytes = bytes
        count = buffer.count
    }
}

indirect enum JSONNode {
    case null
    case bool(Bool)
    /// Byte range of a number (validated JSON number syntax); `integral`: no fraction, no exponent.
    case number(start: Int32, end: Int32, integral: Bool)
    case string(String)
    case array([JSONNode])
    case object([String: JSONNode])
}

struct FastJSONError: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

struct JSONParser {
    let source: JSONSource
    private var i = 0
    private var depth = 0
    static let maxDepth = 256

    init(source: JSONSource) { self.source = source }

    mutating func parseDocument() throws -> JSONNode {
        try source.bytes.withUnsafeBufferPointer { all in
            let b = UnsafeBufferPointer(rebasing: all[0..<source.count])
            let value = try parseValue(b)
            skipSpace(b)
            guard i == b.count else { throw FastJSONError("trailing bytes") }
            return value
        }
    }

    private mutating func skipSpace(_ b: UnsafeBufferPointer<UInt8>) {
        while i < b.count {
            switch b[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private mutating func parseValue(_ b: UnsafeBufferPointer<UInt8>) throws -> JSONNode {
        skipSpace(b)
        guard i < b.count else { throw FastJSONError("unexpected end") }
        switch b[i] {
        case UInt8(ascii: "{"): return try parseObject(b)
        case UInt8(ascii: "["): return try parseArray(b)
        case UInt8(ascii: "\""): return .string(try parseString(b))
        case UInt8(ascii: "t"): try literal(b, "true"); return .bool(true)
        case UInt8(ascii: "f"): try literal(b, "false"); return .bool(false)
        case UInt8(ascii: "n"): try literal(b, "null"); return .null
        default: return try parseNumber(b)
        }
    }

    private mutating func literal(_ b: UnsafeBufferPointer<UInt8>, _ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { throw FastJSONError("bad literal") }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { throw FastJSONError("bad literal") }
        i += n
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= Self.maxDepth else { throw FastJSONError("nested too deeply") }
    }

    private mutating func parseObject(_ b: UnsafeBufferPointer<UInt8>) throws -> JSONNode {
        try enter()
        defer { depth -= 1 }
        i += 1
        var object: [String: JSONNode] = [:]
        skipSpace(b)
        if i < b.count && b[i] == UInt8(ascii: "}") { i += 1; return .object(object) }
        while true {
            skipSpace(b)
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw FastJSONError("expected a key") }
            let key = try parseString(b)
            skipSpace(b)
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw FastJSONError("expected ':'") }
            i += 1
            // A repeated key: Foundation's behaviour decides (fall back).
            guard object.updateValue(try parseValue(b), forKey: key) == nil else { throw FastJSONError("repeated key") }
            skipSpace(b)
            guard i < b.count else { throw FastJSONError("unexpected end") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "}") { i += 1; return .object(object) }
            throw FastJSONError("expected ',' or '}'")
        }
    }

    private mutating func parseArray(_ b: UnsafeBufferPointer<UInt8>) throws -> JSONNode {
        try enter()
        defer { depth -= 1 }
        i += 1
        var array: [JSONNode] = []
        skipSpace(b)
        if i < b.count && b[i] == UInt8(ascii: "]") { i += 1; return .array(array) }
        while true {
            array.append(try parseValue(b))
            skipSpace(b)
            guard i < b.count else { throw FastJSONError("unexpected end") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "]") { i += 1; return .array(array) }
            throw FastJSONError("expected ',' or ']'")
        }
    }

    private mutating func parseNumber(_ b: UnsafeBufferPointer<UInt8>) throws -> JSONNode {
        let start = i
        var integral = true
        func digit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        if i < b.count && b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < b.count, digit(b[i]) else { throw FastJSONError("bad number") }
        if b[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while i < b.count && digit(b[i]) { i += 1 }
        }
        if i < b.count && b[i] == UInt8(ascii: ".") {
            integral = false
            i += 1
            guard i < b.count, digit(b[i]) else { throw FastJSONError("bad number") }
            while i < b.count && digit(b[i]) { i += 1 }
        }
        if i < b.count && (b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E")) {
            integral = false
            i += 1
            if i < b.count && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) { i += 1 }
            guard i < b.count, digit(b[i]) else { throw FastJSONError("bad number") }
            while i < b.count && digit(b[i]) { i += 1 }
        }
        guard i - start <= 64 else { throw FastJSONError("number too long") }
        return .number(start: Int32(start), end: Int32(i), integral: integral)
    }

    private mutating func parseString(_ b: UnsafeBufferPointer<UInt8>) throws -> String {
        i += 1  // opening quote
        let start = i
        // Fast path: no escapes.
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                guard let s = String(validating: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self) else {
                    throw FastJSONError("invalid UTF-8")
                }
                i += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            guard c >= 0x20 else { throw FastJSONError("control character in string") }
            i += 1
        }
        // Slow path with escapes.
        var out: [UInt8] = Array(b[start..<i])
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw FastJSONError("invalid UTF-8") }
                return s
            }
            guard c >= 0x20 else { throw FastJSONError("control character in string") }
            if c != UInt8(ascii: "\\") {
                out.append(c)
                i += 1
                continue
            }
            i += 1
            guard i < b.count else { throw FastJSONError("unexpected end") }
            let e = b[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(b)
                if (0xD800...0xDBFF).contains(scalar) {
                    // A high surrogate must be followed by \u and a low surrogate.
                    guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else { throw FastJSONError("lone surrogate") }
                    i += 2
                    let low = try hex4(b)
                    guard (0xDC00...0xDFFF).contains(low) else { throw FastJSONError("lone surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw FastJSONError("lone surrogate")
                }
                guard let u = Unicode.Scalar(scalar) else { throw FastJSONError("bad escape") }
                out.append(contentsOf: String(Character(u)).utf8)
            default: throw FastJSONError("bad escape")
            }
        }
        throw FastJSONError("unterminated string")
    }

    private mutating func hex4(_ b: UnsafeBufferPointer<UInt8>) throws -> UInt32 {
        guard i + 4 <= b.count else { throw FastJSONError("bad escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw FastJSONError("bad escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }
}

// MARK: the Decoder

private struct FastJSONDecoder: Decoder {
    let value: JSONNode
    let source: JSONSource
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let object) = value else { throw mismatch([String: Any].self, codingPath) }
        return KeyedDecodingContainer(KeyedContainer<Key>(object: object, source: source, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let array) = value else { throw mismatch([Any].self, codingPath) }
        return UnkeyedContainer(array: array, source: source, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValue(value: value, source: source, codingPath: codingPath)
    }
}

private func mismatch(_ type: Any.Type, _ path: [any CodingKey], _ why: String = "type mismatch") -> DecodingError {
    .typeMismatch(type, .init(codingPath: path, debugDescription: why))
}

/// Conversions of one node to the primitive types.
private struct Scalar {
    let value: JSONNode
    let source: JSONSource
    /// The path is built only when asked for (errors, nested containers): not once per vector element.
    let parentPath: [any CodingKey]
    let last: (any CodingKey)?

    init(value: JSONNode, source: JSONSource, parentPath: [any CodingKey], last: (any CodingKey)?) {
        self.value = value
        self.source = source
        self.parentPath = parentPath
        self.last = last
    }

    var codingPath: [any CodingKey] { last.map { parentPath + [$0] } ?? parentPath }

    /// The number as the client wrote it (for error messages), at most 64 bytes long.
    private var numberText: String {
        guard case .number(let start, let end, _) = value else { return "" }
        return String(decoding: source.bytes[Int(start)..<Int(end)], as: UTF8.self)
    }

    private func outOfRange<T>(_ type: T.Type, _ range: String) -> DecodingError {
        mismatch(T.self, codingPath, "\(numberText) is out of range: \(range)")
    }

    func bool() throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch(Bool.self, codingPath) }
        return b
    }

    func string() throws -> String {
        guard case .string(let s) = value else { throw mismatch(String.self, codingPath) }
        return s
    }

    /// A whole number in range. Like Foundation, a number written with a fraction or an exponent
    /// is accepted when its value is whole (`5.0`, `1e3`).
    func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        guard case .number(let start, let end, let integral) = value else { throw mismatch(T.self, codingPath) }
        if !integral {
            let d = try double()
            guard d == d.rounded(.towardZero) else { throw mismatch(T.self, codingPath, "\(numberText) is not a whole number") }
            guard let v = T(exactly: d) else { throw outOfRange(T.self, "an integer from \(T.min) to \(T.max)") }
            return v
        }
        let b = source.bytes
        var k = Int(start)
        let negative = b[k] == UInt8(ascii: "-")
        if negative { k += 1 }
        var v: T = 0
        while k < Int(end) {
            let d = T(b[k] - UInt8(ascii: "0"))
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(d) : m.addingReportingOverflow(d)
            guard !o1, !o2 else { throw outOfRange(T.self, "an integer from \(T.min) to \(T.max)") }
            v = s
            k += 1
        }
        return v
    }

    private func withCString<R>(_ body: (UnsafePointer<CChar>) -> R) throws -> R {
        guard case .number(let start, _, _) = value else { throw mismatch(Double.self, codingPath) }
        return source.bytes.withUnsafeBytes { b in
            body(b.baseAddress!.advanced(by: Int(start)).assumingMemoryBound(to: CChar.self))
        }
    }

    func double() throws -> Double {
        let d = try withCString { strtod($0, nil) }
        guard d.isFinite else { throw outOfRange(Double.self, "a 64-bit float's magnitude is at most \(Double.greatestFiniteMagnitude)") }
        return d
    }

    func float() throws -> Float {
        let f = try withCString { strtof($0, nil) }
        guard f.isFinite else { throw outOfRange(Float.self, "a float32's magnitude is at most \(Float.greatestFiniteMagnitude)") }
        return f
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        // The hot types first, without a trip through init(from:).
        if T.self == Float.self { return try float() as! T }
        if T.self == Double.self { return try double() as! T }
        if T.self == String.self { return try string() as! T }
        if T.self == Int.self { return try integer(Int.self) as! T }
        if T.self == Bool.self { return try bool() as! T }
        if T.self == [Float].self {
            // Vectors: straight from the nodes, no container per element.
            guard case .array(let items) = value else { throw mismatch([Float].self, codingPath) }
            var out = [Float]()
            out.reserveCapacity(items.count)
            let path = codingPath
            for (i, item) in items.enumerated() {
                out.append(try Scalar(value: item, source: source, parentPath: path, last: IndexKey(i)).float())
            }
            return out as! T
        }
        return try T(from: FastJSONDecoder(value: value, source: source, codingPath: codingPath))
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: [String: JSONNode]
    let source: JSONSource
    let codingPath: [any CodingKey]

    var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }
    func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

    private func node(_ key: Key) throws -> JSONNode {
        guard let node = object[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return node
    }

    private func scalar(_ key: Key) throws -> Scalar { Scalar(value: try node(key), source: source, parentPath: codingPath, last: key) }

    func decodeNil(forKey key: Key) throws -> Bool {
        if case .null = try node(key) { return true }
        return false
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try scalar(key).bool() }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try scalar(key).string() }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try scalar(key).double() }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try scalar(key).float() }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try scalar(key).integer(Int.self) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try scalar(key).integer(Int8.self) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try scalar(key).integer(Int16.self) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try scalar(key).integer(Int32.self) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try scalar(key).integer(Int64.self) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try scalar(key).integer(UInt.self) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try scalar(key).integer(UInt8.self) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try scalar(key).integer(UInt16.self) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try scalar(key).integer(UInt32.self) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try scalar(key).integer(UInt64.self) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try scalar(key).decode(T.self) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try FastJSONDecoder(value: try node(key), source: source, codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try FastJSONDecoder(value: try node(key), source: source, codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { FastJSONDecoder(value: .object(object), source: source, codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        FastJSONDecoder(value: object[key.stringValue] ?? .null, source: source, codingPath: codingPath + [key])
    }
}

private struct IndexKey: CodingKey {
    var stringValue: String { "Index \(intValue!)" }
    var intValue: Int?
    init(_ i: Int) { intValue = i }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let array: [JSONNode]
    let source: JSONSource
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(array: [JSONNode], source: JSONSource, codingPath: [any CodingKey]) {
        self.array = array
        self.source = source
        self.codingPath = codingPath
    }

    var count: Int? { array.count }
    var isAtEnd: Bool { currentIndex >= array.count }

    private mutating func next() throws -> Scalar {
        guard !isAtEnd else { throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "at end")) }
        defer { currentIndex += 1 }
        return Scalar(value: array[currentIndex], source: source, parentPath: codingPath, last: IndexKey(currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "at end")) }
        if case .null = array[currentIndex] {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next().bool() }
    mutating func decode(_ type: String.Type) throws -> String { try next().string() }
    mutating func decode(_ type: Double.Type) throws -> Double { try next().double() }
    mutating func decode(_ type: Float.Type) throws -> Float { try next().float() }
    mutating func decode(_ type: Int.Type) throws -> Int { try next().integer(Int.self) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next().integer(Int8.self) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next().integer(Int16.self) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next().integer(Int32.self) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next().integer(Int64.self) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next().integer(UInt.self) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next().integer(UInt8.self) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next().integer(UInt16.self) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next().integer(UInt32.self) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next().integer(UInt64.self) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(T.self) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let s = try next()
        return try FastJSONDecoder(value: s.value, source: source, codingPath: s.codingPath).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let s = try next()
        return try FastJSONDecoder(value: s.value, source: source, codingPath: s.codingPath).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let s = try next()
        return FastJSONDecoder(value: s.value, source: source, codingPath: s.codingPath)
    }
}

private struct SingleValue: SingleValueDecodingContainer {
    let value: JSONNode
    let source: JSONSource
    let codingPath: [any CodingKey]

    private var scalar: Scalar { Scalar(value: value, source: source, parentPath: codingPath, last: nil) }

    func decodeNil() -> Bool {
        if case .null = value { return true }
        return false
    }

    func decode(_ type: Bool.Type) throws -> Bool { try scalar.bool() }
    func decode(_ type: String.Type) throws -> String { try scalar.string() }
    func decode(_ type: Double.Type) throws -> Double { try scalar.double() }
    func decode(_ type: Float.Type) throws -> Float { try scalar.float() }
    func decode(_ type: Int.Type) throws -> Int { try scalar.integer(Int.self) }
    func decode(_ type: Int8.Type) throws -> Int8 { try scalar.integer(Int8.self) }
    func decode(_ type: Int16.Type) throws -> Int16 { try scalar.integer(Int16.self) }
    func decode(_ type: Int32.Type) throws -> Int32 { try scalar.integer(Int32.self) }
    func decode(_ type: Int64.Type) throws -> Int64 { try scalar.integer(Int64.self) }
    func decode(_ type: UInt.Type) throws -> UInt { try scalar.integer(UInt.self) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try scalar.integer(UInt8.self) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try scalar.integer(UInt16.self) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try scalar.integer(UInt32.self) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try scalar.integer(UInt64.self) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try scalar.decode(T.self) }
}
