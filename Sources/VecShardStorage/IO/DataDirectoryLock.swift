#if canImport(Glibc)
import Glibc
#endif
import VecShardPrimitives

/// An exclusive lock on a data directory: `flock` on `<directory>/LOCK`, which holds the
/// holder's pid (for the message of whoever is refused). Two processes appending to one
/// write-ahead log lose acknowledged writes, so a shard holds this while it is open. The
/// lock belongs to the open file: a second acquire in the same process fails too, and the
/// kernel releases it when the process dies (kill -9 included), so a stale file is harmless.
public final class DataDirectoryLock: @unchecked Sendable {
    public let directory: String
    private let fd: Locked<Int32>

    private init(directory: String, fd: Int32) {
        self.directory = directory
        self.fd = Locked(fd)
    }

    /// Takes the lock (creating the directory and `LOCK` if needed), or throws
    /// `dataDirectoryLocked` naming the directory and, when the file says, the holder's pid.
    public static func acquire(_ directory: String) throws -> DataDirectoryLock {
        try FileIO.makeDirectories(directory)
        let path = directory + "/LOCK"
        let fd = try FileIO.open(path, O_RDWR | O_CREAT)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            defer { close(fd) }
            guard e == EWOULDBLOCK else { throw ioError(path, "flock", e) }
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            let text = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
            throw StorageError.dataDirectoryLocked(path: directory, holderPID: Int32(text.split(separator: "\n").first ?? ""))
        }
        // The pid is informational: a full disk may refuse it, the lock still holds.
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
        return DataDirectoryLock(directory: directory, fd: fd)
    }

    /// Releases the lock (idempotent; also on deinit).
    public func release() {
        fd.withLock { fd in
            guard fd >= 0 else { return }
            close(fd) // closing the only descriptor of the open file drops the flock
            fd = -1
        }
    }

    deinit { release() }
}
