import VecShardPrimitives
/// Recycled record-payload buffers, shared by every log of the process. A writer encodes
/// into one; the log gives it back once the group is written. Large buffers that are
/// allocated fresh for every write cost page faults and kernel zeroing of every page, which
/// was a tenth of the write path's CPU for 3 MB batches. Bounded: at most `maxBytes` of
/// capacity is kept, and no buffer above `maxBufferBytes`.
final class PayloadBuffers: @unchecked Sendable {
    static let shared = PayloadBuffers()
    static let maxBytes = 64 << 20
    static let maxBufferBytes = 16 << 20

    private let free = Locked<(buffers: [[UInt8]], bytes: Int)>(([], 0))

    /// A buffer with some capacity, or an empty array when none is free.
    func take() -> [UInt8] {
        free.withLock { f in
            guard let b = f.buffers.popLast() else { return [] }
            f.bytes -= b.capacity
            return b
        }
    }

    func give(_ buffer: [UInt8]) {
        let capacity = buffer.capacity
        guard capacity >= 4096, capacity <= Self.maxBufferBytes else { return }
        free.withLock { f in
            guard f.bytes + capacity <= Self.maxBytes else { return }
            f.buffers.append(buffer)
            f.bytes += capacity
        }
    }
}
