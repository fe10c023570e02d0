import Foundation
import VecShardRouting
import Yams

/// Reads a topology document (YAML, or JSON when it starts with `{`) and validates it.
public enum TopologyFile {
    public static func load(path: String) throws -> Topology {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read topology file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        let topology: Topology
        do {
            if text.drop(while: \.isWhitespace).first == "{" {
                topology = try JSONDecoder().decode(Topology.self, from: data)
            } else {
                topology = try YAMLDecoder().decode(Topology.self, from: text)
            }
        } catch let error as DecodingError {
            throw ConfigurationError("topology file \(path): \(describe(error))")
        } catch {
            throw ConfigurationError("topology file \(path) is not valid YAML or JSON: \(error)")
        }
        do {
            try topology.validate()
        } catch {
            throw ConfigurationError("topology file \(path): \(error)")
        }
        return topology
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case .keyNotFound(let key, let c): return "missing field \((path(c.codingPath) + "." + key.stringValue).trimmingCharacters(in: CharacterSet(charactersIn: ".")))"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): return "field \(path(c.codingPath)): \(c.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
