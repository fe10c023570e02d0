import COpenSSL

/// Errors from OpenSSL, with its error queue rendered as text.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public var description: String

    init(_ what: String) {
        var text = what
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, buf.count)
            text += ": " + String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        description = text
    }
}

/// An OpenSSL `SSL_CTX` for a server (certificate chain + private key, ALPN h2 then http/1.1) or a
/// client (ALPN h2, optional verification against a CA file). Shared by all connections.
public final class TLSContext: @unchecked Sendable {
    let raw: OpaquePointer
    let isServer: Bool

    /// A server context from PEM files.
    public init(certificateChainFile: String, privateKeyFile: String) throws {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw TLSError("SSL_CTX_new") }
        raw = ctx
        isServer = true
        _ = vs_ssl_ctx_set_min_tls12(ctx)
        _ = vs_ssl_ctx_set_modes(ctx)
        guard SSL_CTX_use_certificate_chain_file(ctx, certificateChainFile) == 1 else {
            throw TLSError("cannot load TLS certificate chain from \(certificateChainFile)")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            throw TLSError("cannot load TLS private key from \(privateKeyFile)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw TLSError("TLS private key \(privateKeyFile) does not match the certificate")
        }
        vs_ssl_ctx_enable_server_alpn(ctx)
    }

    /// A client context. With `verifyPeer`, the server certificate must chain to `caFile` (or the
    /// system roots when `caFile` is nil).
    public init(clientVerifyingPeer verifyPeer: Bool, caFile: String? = nil) throws {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw TLSError("SSL_CTX_new") }
        raw = ctx
        isServer = false
        _ = vs_ssl_ctx_set_min_tls12(ctx)
        _ = vs_ssl_ctx_set_modes(ctx)
        guard vs_ssl_ctx_set_client_alpn(ctx) == 0 else { throw TLSError("SSL_CTX_set_alpn_protos") }
        if verifyPeer {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            let ok = caFile.map { SSL_CTX_load_verify_locations(ctx, $0, nil) } ?? SSL_CTX_set_default_verify_paths(ctx)
            guard ok == 1 else { throw TLSError("cannot load CA certificates from \(caFile ?? "the system store")") }
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
    }

    deinit { SSL_CTX_free(raw) }
}
