#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call on a file: which call, on which path, and errno.
public struct FileSystemError: Error, Sendable, Equatable {
    public var path: String
    public var operation: String
    public var errno: Int32

    public init(path: String, operation: String, errno: Int32) {
        (self.path, self.operation, self.errno) = (path, operation, errno)
    }
}

/// A read-only memory mapping of a whole file, unmapped when released. An empty file maps to
/// an empty region (`base` nil, `size` 0). Index files and segment files are written once and
/// never changed in place, so readers may keep pointers into the mapping while it lives.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let base: UnsafeRawPointer?
    public let size: Int

    public init(path: String) throws(FileSystemError) {
        self.path = path
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw FileSystemError(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileSystemError(path: path, operation: "stat", errno: errno) }
        size = Int(st.st_size)
        guard size > 0 else {
            base = nil
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw FileSystemError(path: path, operation: "mmap", errno: errno)
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Unmaps the whole pages inside `region` (part of this mapping) from this process, so
    /// pages read once (a checksum pass) stop counting as its resident memory. They stay in
    /// the page cache and the next access maps them again: the mapping is read-only, so
    /// nothing is lost.
    public func dropResidentPages(_ region: UnsafeRawBufferPointer) {
        #if os(Linux)
        guard let start = region.baseAddress, region.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + region.count) / page * page
        guard end > first else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: first), end - first, 4 /* MADV_DONTNEED */)
        #endif
    }
}
