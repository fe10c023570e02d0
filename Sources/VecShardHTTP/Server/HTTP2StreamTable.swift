/// The open streams of one HTTP/2 server connection, by stream id.
///
/// Open addressing with linear probing and backward-shift deletion (no tombstones). Client stream
/// ids are odd and increase (RFC 9113 section 5.1.1), so `id >> 1` puts the streams open at one
/// time in neighbouring slots and look-ups rarely probe; no string-keyed or SipHash hashing per
/// callback. The table doubles when half full, so it holds at most twice the peak number of open
/// streams (bounded by SETTINGS_MAX_CONCURRENT_STREAMS plus streams closing).
struct HTTP2StreamTable {
    private var slots: [HTTP2ServerStream?]
    private var mask: Int
    private(set) var count = 0

    init(minimumCapacity: Int = 32) {
        var capacity = 16
        while capacity < minimumCapacity { capacity *= 2 }
        slots = Array(repeating: nil, count: capacity)
        mask = capacity - 1
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func home(_ id: Int32) -> Int { Int(UInt32(bitPattern: id) >> 1) & mask }

    private func index(of id: Int32) -> Int? {
        var i = home(id)
        while let stream = slots[i] {
            if stream.id == id { return i }
            i = (i + 1) & mask
        }
        return nil
    }

    subscript(id: Int32) -> HTTP2ServerStream? {
        index(of: id).flatMap { slots[$0] }
    }

    /// Adds the stream, replacing one with the same id.
    mutating func insert(_ stream: HTTP2ServerStream) {
        if (count + 1) * 2 > slots.count { grow() }
        var i = home(stream.id)
        while let existing = slots[i] {
            if existing.id == stream.id {
                slots[i] = stream
                return
            }
            i = (i + 1) & mask
        }
        slots[i] = stream
        count += 1
    }

    @discardableResult
    mutating func remove(_ id: Int32) -> HTTP2ServerStream? {
        guard var hole = index(of: id) else { return nil }
        let removed = slots[hole]
        slots[hole] = nil
        count -= 1
        // Move later members of the probe run back so every stream stays reachable from its home.
        var j = hole
        while true {
            j = (j + 1) & mask
            guard let stream = slots[j] else { break }
            let h = home(stream.id)
            let reachable = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j)
            if !reachable {
                slots[hole] = stream
                slots[j] = nil
                hole = j
            }
        }
        return removed
    }

    mutating func removeAll() {
        for i in slots.indices { slots[i] = nil }
        count = 0
    }

    /// The open streams, in no particular order.
    var values: [HTTP2ServerStream] { slots.compactMap { $0 } }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: nil, count: old.count * 2)
        mask = slots.count - 1
        count = 0
        for case let stream? in old { insert(stream) }
    }
}
