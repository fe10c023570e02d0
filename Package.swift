// swift-tools-version:6.1
import PackageDescription

// Module layout (dependency arrows point one way, top to bottom):
//   vecshard (executable)       command line: serve, bench-index, bench-http, ...
//   VecShardServer              the service: routes, metrics, lifecycle
//   VecShardBench               benchmark drivers (TEXMEX I/O, load generators)
//   VecShardHTTP                HTTP/2 (nghttp2) + HTTP/1.1 (NIO) server and client, TLS (OpenSSL);
//                               the only module that touches C pointers of nghttp2/OpenSSL
//   VecShardCluster             the router: ShardClient (in-process / gRPC), placement of writes, scatter-gather search
//   VecShardRouting             placement (XXH64 + rendezvous), topology and its validation: pure functions
//   VecShardRPC                 gRPC over the HTTP/2 stack: framing, status, deadlines; server and client
//   VecShardProto               hand-written protobuf codec and the shard service's messages
//   VecShardStorage             a shard's collections: WAL, segments, manifest, metadata filters
//   VecShardHashing             XXH64 (placement hash, storage checksums)
//   VecShardEngine              vectors in, neighbours out: kernels and indexes, no networking
//   CNGHTTP2, COpenSSL          system libraries
let package = Package(
    name: "vecshard",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "vecshard", targets: ["vecshard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "VecShardHTTP",
            dependencies: [
                "CNGHTTP2",
                "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: [
                // Per-request hot path: the runtime exclusivity checks cost about 2% of a
                // /healthz request under h2load (perf); the compiler's static checks remain.
                .unsafeFlags(["-enforce-exclusivity=unchecked"]),
            ]
        ),
        .target(name: "VecShardProto"),
        // libFuzzer target for the protobuf decoders (`make fuzz`); without -DFUZZING it replays corpus files.
        .executableTarget(
            name: "VecShardProtoFuzz",
            dependencies: ["VecShardProto"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .target(name: "VecShardHashing"),
        .target(name: "VecShardRouting", dependencies: ["VecShardHashing"]),
        .target(
            name: "VecShardCluster",
            dependencies: ["VecShardStorage", "VecShardEngine", "VecShardProto", "VecShardRouting", "VecShardRPC", "VecShardHTTP", "VecShardHashing",
                           .product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "VecShardRPC",
            dependencies: ["VecShardHTTP", "VecShardProto", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]
        ),
        .target(name: "CVecKernels"),
        .target(
            name: "VecShardEngine",
            dependencies: ["CVecKernels"],
            exclude: ["ALGO_PARAMS.md"]
        ),
        .target(
            name: "VecShardStorage",
            dependencies: ["VecShardEngine", "VecShardHashing"]
        ),
        .target(
            name: "VecShardBench",
            dependencies: ["VecShardEngine", "VecShardStorage"]
        ),
        .target(
            name: "VecShardServer",
            dependencies: [
                "VecShardHTTP",
                "VecShardCluster",
                "VecShardStorage",
                "VecShardRouting",
                "VecShardProto",
                "VecShardEngine",
                "VecShardRPC",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        .executableTarget(
            name: "vecshard",
            dependencies: [
                "VecShardServer",
                "VecShardBench",
                "VecShardStorage",
                "VecShardCluster",
                "VecShardRouting",
                "VecShardProto",
                "VecShardHTTP",
                "VecShardRPC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "VecShardHTTPTests", dependencies: [
            "VecShardHTTP",
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "VecShardRoutingTests", dependencies: ["VecShardRouting"]),
        .testTarget(name: "VecShardClusterTests", dependencies: ["VecShardCluster", "VecShardStorage", "VecShardProto", "VecShardRouting"]),
        .testTarget(name: "VecShardProtoTests", dependencies: ["VecShardProto"], exclude: ["Interop"]),
        .testTarget(name: "VecShardRPCTests", dependencies: [
            "VecShardRPC", "VecShardHTTP", "VecShardProto", "VecShardCluster",
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ], exclude: ["Interop"]),
        .testTarget(name: "VecShardEngineTests", dependencies: ["VecShardEngine", "CVecKernels"]),
        .testTarget(name: "VecShardStorageTests", dependencies: [
            "VecShardStorage",
            "vecshard", // the storage-stress child process of the crash tests
        ]),
        .testTarget(name: "VecShardServerTests", dependencies: [
            "VecShardServer",
            "VecShardStorage", // storage options of the in-process service (collection limit)
            "VecShardHTTP",
            "VecShardEngine",
            "VecShardCluster",
            "VecShardProto",
            "VecShardRPC",
            "vecshard", // built for the end-to-end process tests
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"), // the reference rendering of the request metrics
        ]),
    ]
)
