#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The strings of header fields recently received on one connection, reused while the peer keeps
/// sending the same bytes. Peers repeat most fields on every request or response of a connection
/// (`user-agent`, `content-type`, `:authority`; HPACK indexes them for that reason), so decoding
/// and allocating a `String` per field per message is mostly repeated work.
///
/// Names and values are compared byte for byte, so a hit returns exactly the string a fresh
/// decode would. Bounded: `capacity` names, each with its last value (values over
/// `maxValueBytes` are decoded every time and not kept). Owned by one connection handler and
/// touched only on its event loop.
struct HeaderFieldCache {
    private var names: [String] = []
    private var values: [String] = []
    private var nextEviction = 0

    static let capacity = 32
    /// Strings up to this many UTF-8 bytes are stored inline on 64-bit platforms.
    static let smallStringBytes = 15
    static let maxValueBytes = 1024

    init() {
        names.reserveCapacity(Self.capacity)
        values.reserveCapacity(Self.capacity)
    }

    /// The name and value as strings (both empty when absent).
    mutating func field(_ name: UnsafePointer<UInt8>?, _ nameLen: Int,
                        _ value: UnsafePointer<UInt8>?, _ valueLen: Int) -> (name: String, value: String) {
        guard let name, nameLen > 0 else { return ("", makeString(value, valueLen)) }
        if nameLen <= Self.smallStringBytes && valueLen <= Self.smallStringBytes {
            // Both fit a small (inline) String: decoding them allocates nothing, and is cheaper
            // than searching the table.
            return (makeString(name, nameLen), makeString(value, valueLen))
        }
        if let slot = slot(of: name, nameLen) {
            if !Self.equals(values[slot], value, valueLen) {
                let decoded = makeString(value, valueLen)
                values[slot] = valueLen <= Self.maxValueBytes ? decoded : ""
                return (names[slot], decoded)
            }
            return (names[slot], values[slot])
        }
        let decodedName = makeString(name, nameLen)
        let decodedValue = makeString(value, valueLen)
        let kept = valueLen <= Self.maxValueBytes ? decodedValue : ""
        if names.count < Self.capacity {
            names.append(decodedName)
            values.append(kept)
        } else {
            names[nextEviction] = decodedName
            values[nextEviction] = kept
            nextEviction = (nextEviction + 1) % Self.capacity
        }
        return (decodedName, decodedValue)
    }

    private func slot(of name: UnsafePointer<UInt8>, _ nameLen: Int) -> Int? {
        for i in names.indices where Self.equals(names[i], name, nameLen) { return i }
        return nil
    }

    @inline(__always)
    private static func equals(_ string: String, _ bytes: UnsafePointer<UInt8>?, _ count: Int) -> Bool {
        guard string.utf8.count == count else { return false }
        guard count > 0, let bytes else { return true }
        return string.utf8.withContiguousStorageIfAvailable { utf8 in
            memcmp(utf8.baseAddress!, bytes, count) == 0
        } ?? string.utf8.elementsEqual(UnsafeBufferPointer(start: bytes, count: count))
    }
}
