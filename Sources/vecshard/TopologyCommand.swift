import ArgumentParser
import Foundation
import NIOPosix
import VecShardEtcd
import VecShardHTTP
import VecShardRouting
import VecShardServer

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Work with topology files and the topology in etcd.",
        subcommands: [Validate.self, Get.self, Put.self]
    )

    /// Runs `body` with a store for `url` (a clear error and exit 1 when etcd does not answer).
    static func withStore(_ url: String, _ body: (EtcdTopologyStore) async throws -> Void) async throws {
        let parsed: EtcdURL
        do { parsed = try EtcdURL(url) } catch { throw ValidationError("--etcd: \(error)") }
        let http = HTTP2Client(group: MultiThreadedEventLoopGroup.singleton)
        do {
            try await body(EtcdTopologyStore(url: parsed, http: http))
        } catch let error as ExitCode {
            await http.shutdown()
            throw error
        } catch {
            await http.shutdown()
            FileHandle.standardError.write(Data("vecshard topology: \(error)\n".utf8))
            throw ExitCode(1)
        }
        await http.shutdown()
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the topology stored in etcd (JSON).")

        @Option(help: "etcd://HOST:PORT[,HOST:PORT...]/PREFIX") var etcd: String

        func run() async throws {
            try await TopologyCommand.withStore(etcd) { store in
                let (topology, revision) = try await store.read()
                guard let topology else {
                    FileHandle.standardError.write(Data("vecshard topology: \(store.url.topologyKey) holds no topology yet (seed it with `vecshard topology put FILE --etcd ...`)\n".utf8))
                    throw ExitCode(1)
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                print(String(decoding: try encoder.encode(topology), as: UTF8.self))
                FileHandle.standardError.write(Data("version \(topology.version), etcd mod revision \(revision)\n".utf8))
            }
        }
    }

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a topology file in etcd (seeds an empty etcd; otherwise its version must be higher than the stored one).")

        @Argument(help: "The topology file (YAML or JSON).") var file: String
        @Option(help: "etcd://HOST:PORT[,HOST:PORT...]/PREFIX") var etcd: String
        @Option(name: .customLong("if-version"), help: "Only if the stored topology has this version (as If-Match does).") var ifVersion: UInt64?

        func run() async throws {
            let topology: VecShardRouting.Topology
            do { topology = try TopologyFile.load(path: file) } catch {
                FileHandle.standardError.write(Data("vecshard topology: \(error)\n".utf8))
                throw ExitCode(1)
            }
            try await TopologyCommand.withStore(etcd) { store in
                let revision = try await store.replace(with: topology, expectedVersion: ifVersion)
                print("stored topology version \(topology.version) at \(store.url.topologyKey) (etcd revision \(revision))")
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a topology file offline (exit 1 with the reason if it is invalid).")

        @Argument(help: "The topology file (YAML or JSON).") var file: String

        func run() throws {
            do {
                let topology = try TopologyFile.load(path: file)
                let shards = topology.allShards
                print("\(file): valid; version \(topology.version), \(topology.groups.count) groups, \(shards.count) shards, "
                      + "\(shards.reduce(0) { $0 + $1.shard.replicas.count }) replicas, \(topology.collections.count) routed collections")
            } catch {
                print("\(file): invalid: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
