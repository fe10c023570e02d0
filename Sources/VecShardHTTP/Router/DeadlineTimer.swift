#if canImport(Glibc)
import Glibc
#endif
import HeapModule

/// Fires request deadlines from one thread of its own. Scheduling takes a lock and a heap
/// insert, cancelling a lock and a dictionary removal: no system call on the request path, unlike
/// an event-loop timer scheduled from another thread (an eventfd write to wake the loop for each
/// schedule and each cancel: about a third of a small request's cost under h2load). The thread
/// is signalled only when a new deadline is earlier than the one it sleeps until, which requests
/// sharing the default timeout never are.
///
/// Actions run on the timer thread and must be short (they cancel a task, resume a continuation).
final class DeadlineTimer: @unchecked Sendable {
    static let shared = DeadlineTimer()

    private struct Entry: Comparable {
        var deadline: UInt64 // CLOCK_MONOTONIC nanoseconds
        var id: UInt64
        static func < (a: Entry, b: Entry) -> Bool { (a.deadline, a.id) < (b.deadline, b.id) }
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`. Cancelled entries stay in the heap until they reach its top.
    private var heap = Heap<Entry>()
    private var actions: [UInt64: @Sendable () -> Void] = [:]
    private var nextID: UInt64 = 1
    private var sleepingUntil = UInt64.max

    private init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        var thread = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            Unmanaged<DeadlineTimer>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box)
        pthread_detach(thread)
    }

    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Runs `action` once `nanoseconds` have passed, unless cancelled first. Returns its id.
    func schedule(in nanoseconds: Int64, _ action: @escaping @Sendable () -> Void) -> UInt64 {
        let deadline = Self.monotonicNanoseconds() &+ UInt64(max(0, nanoseconds))
        pthread_mutex_lock(mutex)
        let id = nextID
        nextID += 1
        heap.insert(Entry(deadline: deadline, id: id))
        actions[id] = action
        let wake = deadline < sleepingUntil
        pthread_mutex_unlock(mutex)
        if wake { pthread_cond_signal(condition) }
        return id
    }

    /// The action of `id` will not run (if it has not started yet).
    func cancel(_ id: UInt64) {
        pthread_mutex_lock(mutex)
        actions.removeValue(forKey: id)
        pthread_mutex_unlock(mutex)
    }

    private func run() {
        pthread_mutex_lock(mutex)
        while true {
            while let top = heap.min, actions[top.id] == nil { _ = heap.removeMin() }
            guard let top = heap.min else {
                sleepingUntil = .max
                pthread_cond_wait(condition, mutex)
                continue
            }
            if top.deadline <= Self.monotonicNanoseconds() {
                _ = heap.removeMin()
                let action = actions.removeValue(forKey: top.id)
                pthread_mutex_unlock(mutex)
                action?()
                pthread_mutex_lock(mutex)
                continue
            }
            sleepingUntil = top.deadline
            var until = timespec(tv_sec: Int(top.deadline / 1_000_000_000), tv_nsec: Int(top.deadline % 1_000_000_000))
            pthread_cond_timedwait(condition, mutex, &until)
            sleepingUntil = .max
        }
    }
}
