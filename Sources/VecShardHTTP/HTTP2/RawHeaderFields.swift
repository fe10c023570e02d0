/// The header fields of one request kept as the bytes nghttp2 delivered, decoded into strings
/// only when a handler needs them: a request answered without a `ServerRequest` (a constant
/// route, matched on the bytes of `:method` and `:path`) costs one copy of its header bytes
/// instead of a `String` per field.
///
/// One growable byte area; per entry the name length and the value length (native `UInt32`
/// each), then the name and value bytes. `:method` and `:path` are entries with an empty name
/// (no regular field has one), found through their offsets. A recycled stream keeps its area (up
/// to `retainedCapacity`), so the next request stores its fields without allocating.
/// Noncopyable: it owns the area, and as a stored property of the stream it is updated in place
/// (no second object to retain per header field). Touched only on the connection's event loop.
struct RawHeaderFields: ~Copyable {
    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private var used = 0
    /// Regular fields stored (pseudo-header fields not included).
    private(set) var count = 0
    /// Offsets of the value bytes and lengths of `:method` and `:path`; length -1 when absent.
    private var methodOffset = 0, methodLength = -1
    private var pathOffset = 0, pathLength = -1

    static let initialCapacity = 256
    /// Capacity kept by `removeAll`; a larger area (up to the header list limit) is released so
    /// an idle connection does not keep it.
    static let retainedCapacity = 1024
    private static let prefixBytes = 2 * MemoryLayout<UInt32>.size

    init() {
        capacity = Self.initialCapacity
        storage = .allocate(byteCount: capacity, alignment: MemoryLayout<UInt32>.alignment)
    }

    deinit { storage.deallocate() }

    /// Appends a regular field (its name must not be empty).
    mutating func append(name: UnsafePointer<UInt8>, _ nameLength: Int, value: UnsafePointer<UInt8>?, _ valueLength: Int) {
        _ = store(name, nameLength, value, valueLength)
        count += 1
    }

    /// Records the value of `:method`.
    mutating func setMethod(_ value: UnsafePointer<UInt8>?, _ length: Int) {
        methodOffset = store(nil, 0, value, length)
        methodLength = length
    }

    /// Records the value of `:path`.
    mutating func setPath(_ value: UnsafePointer<UInt8>?, _ length: Int) {
        pathOffset = store(nil, 0, value, length)
        pathLength = length
    }

    mutating func removeAll() {
        used = 0
        count = 0
        methodLength = -1
        pathLength = -1
        if capacity > Self.retainedCapacity {
            storage.deallocate()
            capacity = Self.initialCapacity
            storage = .allocate(byteCount: capacity, alignment: MemoryLayout<UInt32>.alignment)
        }
    }

    /// Calls `body` with the bytes of `:method` and `:path` (empty when absent), valid only
    /// during the call.
    func withMethodAndPath<R>(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: storage + methodOffset, count: max(methodLength, 0)),
             UnsafeRawBufferPointer(start: storage + pathOffset, count: max(pathLength, 0)))
    }

    /// Calls `body` with each regular field's name and value bytes, in the order they were
    /// appended. The pointers are valid only during the call.
    func forEach(_ body: (_ name: UnsafePointer<UInt8>, _ nameLength: Int, _ value: UnsafePointer<UInt8>, _ valueLength: Int) -> Void) {
        let bytes = storage.assumingMemoryBound(to: UInt8.self)
        var offset = 0
        while offset < used {
            let nameLength = Int(storage.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            let valueLength = Int(storage.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
            let name = bytes + offset + Self.prefixBytes
            if nameLength > 0 { body(name, nameLength, name + nameLength, valueLength) }
            offset += Self.prefixBytes + nameLength + valueLength
        }
    }

    /// Stores one entry; returns the offset of its value bytes.
    private mutating func store(_ name: UnsafePointer<UInt8>?, _ nameLength: Int, _ value: UnsafePointer<UInt8>?, _ valueLength: Int) -> Int {
        let needed = Self.prefixBytes + nameLength + valueLength
        if used + needed > capacity { grow(toAtLeast: used + needed) }
        let entry = storage + used
        entry.storeBytes(of: UInt32(truncatingIfNeeded: nameLength), as: UInt32.self)
        (entry + 4).storeBytes(of: UInt32(truncatingIfNeeded: valueLength), as: UInt32.self)
        if let name, nameLength > 0 { (entry + Self.prefixBytes).copyMemory(from: name, byteCount: nameLength) }
        let valueOffset = used + Self.prefixBytes + nameLength
        if let value, valueLength > 0 { (storage + valueOffset).copyMemory(from: value, byteCount: valueLength) }
        used += needed
        return valueOffset
    }

    private mutating func grow(toAtLeast minimum: Int) {
        var newCapacity = capacity * 2
        while newCapacity < minimum { newCapacity *= 2 }
        let newStorage = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: MemoryLayout<UInt32>.alignment)
        newStorage.copyMemory(from: storage, byteCount: used)
        storage.deallocate()
        storage = newStorage
        capacity = newCapacity
    }
}
