/// Header fields of one message kept as the bytes nghttp2 delivered, decoded into strings only
/// when a handler needs them. Requests answered without a `ServerRequest` (constant routes) then
/// cost one copy of their header bytes instead of a `String` per field.
///
/// Layout: per field, the name length and the value length (native `UInt32` each), then the name
/// bytes and the value bytes. The storage keeps its capacity across `removeAll` up to
/// `retainedCapacity`, so a recycled stream stores the next request's fields without allocating.
struct RawHeaderFields {
    private var bytes: [UInt8] = []
    private(set) var count = 0

    /// Capacity kept by `removeAll`; a larger header block (up to the header list limit) is
    /// released so an idle connection does not keep it.
    static let retainedCapacity = 1024

    private static let prefixBytes = 2 * MemoryLayout<UInt32>.size

    mutating func append(name: UnsafePointer<UInt8>, _ nameLength: Int, value: UnsafePointer<UInt8>?, _ valueLength: Int) {
        if bytes.isEmpty { bytes.reserveCapacity(256) }
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: nameLength)) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: valueLength)) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: UnsafeBufferPointer(start: name, count: nameLength))
        if let value, valueLength > 0 { bytes.append(contentsOf: UnsafeBufferPointer(start: value, count: valueLength)) }
        count += 1
    }

    mutating func removeAll() {
        count = 0
        if bytes.capacity > Self.retainedCapacity {
            bytes = []
        } else {
            bytes.removeAll(keepingCapacity: true)
        }
    }

    /// Calls `body` with each field's name and value bytes, in the order they were appended.
    /// The pointers are valid only during the call.
    func forEach(_ body: (_ name: UnsafePointer<UInt8>, _ nameLength: Int, _ value: UnsafePointer<UInt8>, _ valueLength: Int) -> Void) {
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let raw = UnsafeRawPointer(base)
            var offset = 0
            while offset < buffer.count {
                let nameLength = Int(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                let valueLength = Int(raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                let name = base + offset + Self.prefixBytes
                body(name, nameLength, name + nameLength, valueLength)
                offset += Self.prefixBytes + nameLength + valueLength
            }
        }
    }
}
