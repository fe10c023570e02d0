import CNGHTTP2
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory for one nghttp2 session. nghttp2 allocates and frees several small objects per stream
/// (stream state, outbound frame items, header buffers); with tens of streams in flight per
/// connection they overflow glibc's per-thread cache (7 blocks per size) and take malloc's slower
/// paths. Blocks up to `classBytes * classCount` bytes (header included) are kept on free lists,
/// one per 64-byte size class, and reused; larger ones go straight to malloc. At most
/// `maxPooledBytes` sit on the lists; beyond that freed blocks return to malloc.
///
/// Every block starts with a 16-byte header holding its size class (-1: not pooled), so payloads
/// keep malloc's 16-byte alignment. Used only on the session's event loop; must outlive the
/// session (`NGHTTP2Session` owns both and deletes the session first).
final class NGHTTP2Allocator {
    static let classBytes = 64
    static let classCount = 16
    /// Bytes kept on the free lists at most, per session.
    static let maxPooledBytes = 256 * 1024
    private static let headerBytes = 16

    // Raw memory rather than stored `var`s: no exclusivity checks on the per-allocation path.
    private let freeLists: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private let pooledBytes: UnsafeMutablePointer<Int>

    init() {
        freeLists = .allocate(capacity: Self.classCount)
        freeLists.initialize(repeating: nil, count: Self.classCount)
        pooledBytes = .allocate(capacity: 1)
        pooledBytes.initialize(to: 0)
    }

    deinit {
        for c in 0..<Self.classCount {
            var block = freeLists[c]
            while let b = block {
                block = b.load(fromByteOffset: Self.headerBytes, as: UnsafeMutableRawPointer?.self)
                free(b)
            }
        }
        freeLists.deallocate()
        pooledBytes.deallocate()
    }

    /// The `nghttp2_mem` that routes nghttp2's allocations here.
    var mem: nghttp2_mem {
        nghttp2_mem(
            mem_user_data: Unmanaged.passUnretained(self).toOpaque(),
            malloc: { size, user in allocator(user).allocate(size) },
            free: { pointer, user in allocator(user).release(pointer) },
            calloc: { count, size, user in allocator(user).allocateZeroed(count, size) },
            realloc: { pointer, size, user in allocator(user).reallocate(pointer, size) })
    }

    func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let total = size + Self.headerBytes
        let sizeClass = (total - 1) / Self.classBytes
        if sizeClass < Self.classCount {
            if let block = freeLists[sizeClass] {
                freeLists[sizeClass] = block.load(fromByteOffset: Self.headerBytes, as: UnsafeMutableRawPointer?.self)
                pooledBytes.pointee -= (sizeClass + 1) * Self.classBytes
                block.storeBytes(of: sizeClass, as: Int.self)
                return block + Self.headerBytes
            }
            guard let block = malloc((sizeClass + 1) * Self.classBytes) else { return nil }
            block.storeBytes(of: sizeClass, as: Int.self)
            return block + Self.headerBytes
        }
        guard let block = malloc(total) else { return nil }
        block.storeBytes(of: -1, as: Int.self)
        return block + Self.headerBytes
    }

    func release(_ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        let block = pointer - Self.headerBytes
        let sizeClass = block.load(as: Int.self)
        let blockBytes = (sizeClass + 1) * Self.classBytes
        if sizeClass >= 0 && pooledBytes.pointee + blockBytes <= Self.maxPooledBytes {
            block.storeBytes(of: freeLists[sizeClass], toByteOffset: Self.headerBytes, as: UnsafeMutableRawPointer?.self)
            freeLists[sizeClass] = block
            pooledBytes.pointee += blockBytes
        } else {
            free(block)
        }
    }

    func allocateZeroed(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, let pointer = allocate(bytes) else { return nil }
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        return pointer
    }

    func reallocate(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
        guard let pointer else { return allocate(size) }
        let block = pointer - Self.headerBytes
        let sizeClass = block.load(as: Int.self)
        guard sizeClass >= 0 else {
            guard let grown = realloc(block, size + Self.headerBytes) else { return nil }
            return grown + Self.headerBytes // the header (-1) moved with the contents
        }
        let capacity = (sizeClass + 1) * Self.classBytes - Self.headerBytes
        if size <= capacity { return pointer }
        guard let moved = allocate(size) else { return nil }
        moved.copyMemory(from: pointer, byteCount: capacity)
        release(pointer)
        return moved
    }
}

@inline(__always)
private func allocator(_ user: UnsafeMutableRawPointer?) -> NGHTTP2Allocator {
    Unmanaged<NGHTTP2Allocator>.fromOpaque(user!).takeUnretainedValue()
}
