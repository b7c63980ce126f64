# camara-webrtc: a multi-stage build. The builder compiles the release binary from the committed
# Cargo.lock; the runtime is distroless (glibc, no shell) and runs as a non-root user.
# Every command here is also run by CI outside Docker (.ci/run): the release build, `serve`
# configured by environment, and `healthcheck`.

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
COPY openapi ./openapi
# Not built, but Cargo.toml declares the criterion bench, so its file must exist.
COPY benches ./benches
RUN cargo build --release --locked

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /src/target/release/camara-webrtc /usr/local/bin/camara-webrtc
USER nonroot:nonroot
# Configuration by environment: any key as CAMARA_WEBRTC__SECTION__KEY, e.g.
# CAMARA_WEBRTC__AUTH__HS256_SECRET, CAMARA_WEBRTC__STORE__BACKEND=redis,
# CAMARA_WEBRTC__STORE__REDIS_URL=redis://redis:6379/0, CAMARA_WEBRTC__LOG__FORMAT=json.
ENV CAMARA_WEBRTC__SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080
# `healthcheck` reads the same environment, so it probes the port `serve` listens on.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/camara-webrtc", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/camara-webrtc"]
CMD ["serve"]
