#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import CVecKernels

enum SystemInfo {
    /// Cores this process may use (online processors).
    static var activeProcessorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}

/// A mutual-exclusion lock (pthread mutex on the heap, so its address never moves).
final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always) func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// Many readers (searches) or one writer (add, delete, write to disk). An index's
/// storage may be reallocated only under the write side.
final class ReadWriteLock: @unchecked Sendable {
    private let rw: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        rw = .allocate(capacity: 1)
        rw.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(rw, nil)
    }

    deinit {
        pthread_rwlock_destroy(rw)
        rw.deallocate()
    }

    @inline(__always) func read<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(rw)
        defer { pthread_rwlock_unlock(rw) }
        return try body()
    }

    @inline(__always) func write<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(rw)
        defer { pthread_rwlock_unlock(rw) }
        return try body()
    }
}

/// A pool of reusable per-search scratch objects, so searches on many threads do not
/// allocate.
final class ScratchPool<Scratch>: @unchecked Sendable {
    private let lock = Lock()
    private var free: [Scratch] = []
    private let make: () -> Scratch

    init(_ make: @escaping () -> Scratch) { self.make = make }

    func withScratch<T>(_ body: (Scratch) throws -> T) rethrows -> T {
        let scratch = lock.withLock { free.popLast() } ?? make()
        defer { lock.withLock { free.append(scratch) } }
        return try body(scratch)
    }

    func removeAll() { lock.withLock { free.removeAll() } }
}

/// Runs body(i) for i in 0..<count on `threads` threads, handing out indexes in chunks
/// of `chunk` from a shared counter (so uneven work balances). With one thread, runs
/// in order on the caller's thread.
func parallelFor(_ count: Int, threads: Int, chunk: Int = 1, _ body: (Int) -> Void) {
    guard count > 0 else { return }
    let workers = max(1, min(threads, (count + chunk - 1) / chunk))
    if workers == 1 {
        for i in 0..<count { body(i) }
        return
    }
    let counter = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
    counter.initialize(to: 0)
    defer { counter.deallocate() }
    withoutActuallyEscaping(body) { body in
        // The body and counter are shared on purpose: callers give each i its own
        // output slots or lock what they share.
        let shared = UncheckedSendable((body, counter))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let (body, counter) = shared.value
            while true {
                let start = Int(vk_fetch_add(counter, UInt64(chunk)))
                if start >= count { break }
                for i in start..<min(count, start + chunk) { body(i) }
            }
        }
    }
}

/// Hands a value to concurrent code whose synchronization the compiler cannot see.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// splitmix64: a small, fast, seedable generator. Deterministic for a given seed on
/// every platform (Swift's SystemRandomNumberGenerator is not seedable).
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A hash of (seed, value), uniform over UInt64: per-item randomness that does not
    /// depend on the order items are processed in.
    static func mix(_ seed: UInt64, _ value: UInt64) -> UInt64 {
        var g = SeededGenerator(seed: seed ^ (value &* 0xD6E8_FEB8_6659_FD93))
        _ = g.next()
        return g.next()
    }
}
