#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import VecShardPrimitives

/// True for the errno values that mean "no space left": the write is refused, nothing
/// acknowledged is affected.
func isDiskFull(_ code: Int32) -> Bool { code == ENOSPC || code == EDQUOT || code == EFBIG }

/// A StorageError for a failed system call on `path` (disk-full errnos become `diskFull`).
func ioError(_ path: String, _ operation: String, _ code: Int32 = errno) -> StorageError {
    isDiskFull(code) ? .diskFull(path: path) : .io(path: path, operation: operation, errno: code)
}

/// Test seam for a full disk: while a path prefix is registered, the storage's writes,
/// allocations (fallocate) and directory creations under it fail with ENOSPC, as they do
/// on a full file system. Costs one lock and an empty-array check per write otherwise.
enum DiskFaults {
    private static let prefixes = Locked<[String]>([])

    static func fillDisk(under prefix: String) { prefixes.withLock { $0.append(prefix) } }
    static func freeDisk(under prefix: String) { prefixes.withLock { $0.removeAll { $0 == prefix } } }

    /// ENOSPC when `path` is under a registered prefix.
    static func check(_ path: String) -> Int32? {
        prefixes.withLock { list in list.isEmpty || !list.contains { path.hasPrefix($0) } ? nil : ENOSPC }
    }
}

/// Thin POSIX file helpers that throw `StorageError`. Every function here blocks: call
/// them from the maintenance queue, the WAL's queue or a thread, not from the
/// cooperative pool in a loop.
enum FileIO {
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            throw ioError(path, "open")
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        if let code = DiskFaults.check(path) { throw ioError(path, "write", code) }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, min(bytes.count - done, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError(path, "write")
            }
            done += n
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) }
    }

    /// posix_fallocate of `bytes` from `offset`: 0 or the error number (not errno).
    static func allocate(_ fd: Int32, from offset: Int, bytes: Int, path: String) -> Int32 {
        if let code = DiskFaults.check(path) { return code }
        return posix_fallocate(fd, off_t(offset), off_t(bytes))
    }

    static func fsync(_ fd: Int32, path: String) throws {
        guard Glibc.fsync(fd) == 0 else { throw ioError(path, "fsync") }
    }

    /// Makes the directory entries of `path` (creations, renames, unlinks) durable.
    static func fsyncDirectory(_ path: String) throws {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    static func fileSize(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : nil
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Reads a whole file into memory.
    static func read(_ path: String) throws -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ioError(path, "stat") }
        let size = Int(st.st_size)
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        try out.withUnsafeMutableBytes { buf in
            while done < size {
                let n = Glibc.read(fd, buf.baseAddress! + done, size - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ioError(path, "read")
                }
                if n == 0 { break }
                done += n
            }
        }
        if done < size { out.removeLast(size - done) }
        return out
    }

    /// Writes a file completely and fsyncs it (no rename: for files inside a directory
    /// that is itself renamed into place, or files named by a manifest written later).
    static func writeFile(_ path: String, _ bytes: UnsafeRawBufferPointer) throws {
        let fd = try open(path, O_WRONLY | O_CREAT | O_TRUNC)
        defer { close(fd) }
        do {
            try writeAll(fd, bytes, path: path)
            try fsync(fd, path: path)
        } catch {
            unlink(path)
            throw error
        }
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeFile(path, $0) }
    }

    /// Replaces `path` atomically: temporary file, fsync, rename, fsync of the directory.
    /// A crash leaves either the old or the new content.
    static func replaceAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let tmp = path + ".tmp"
        try writeFile(tmp, bytes)
        guard Glibc.rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw ioError(path, "rename", e)
        }
        try fsyncDirectory(parent(of: path))
    }

    static func makeDirectory(_ path: String) throws {
        if !exists(path), let code = DiskFaults.check(path) { throw ioError(path, "mkdir", code) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw ioError(path, "mkdir") }
    }

    /// Creates `path` and its missing parents.
    static func makeDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            try makeDirectory(prefix)
        }
    }

    static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw ioError(to, "rename") }
    }

    /// Names in a directory (without "." and ".."), sorted; [] if it does not exist.
    static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes a file or a directory tree; missing paths are fine.
    static func removeTree(_ path: String) {
        if isDirectory(path) {
            for name in list(path) { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Bytes of the files under `path` (recursively).
    static func diskBytes(_ path: String) -> Int {
        if isDirectory(path) { return list(path).reduce(0) { $0 + diskBytes(path + "/" + $1) } }
        return fileSize(path) ?? 0
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// Maps a whole file read-only (an empty file maps to an empty region).
func mapFile(_ path: String) throws -> MappedFile {
    do { return try MappedFile(path: path) } catch { throw ioError(error.path, error.operation, error.errno) }
}
