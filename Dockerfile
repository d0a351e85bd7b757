# rectify's container image: built with the same `cargo build --release --locked` as CI, run
# as a non-root user from a distroless image with no shell.
#
# Base images are pinned by digest (multi-arch indexes) so a rebuild uses the same toolchain and
# runtime; to move to newer ones, read the digests with
#   docker buildx imagetools inspect rust:1.95-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot
# and replace them here.
FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
WORKDIR /src
# The release profile keeps function names for profiling; the image needs none of them.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
# Dependencies first, against an empty crate: this layer is rebuilt only when Cargo.toml or
# Cargo.lock change, not on every change to rectify's own code.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bins \
    && rm -rf src
COPY build.rs clippy.toml ./
COPY src ./src
COPY remediations ./remediations
COPY examples ./examples
# The sources copied may be older than the empty crate's build: touch them so cargo rebuilds.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bins

FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
COPY --from=build /src/target/release/rectify /usr/local/bin/rectify
ENV RECTIFY_LOG_FORMAT=json \
    RECTIFY_METRICS=emf \
    RECTIFY_LIVENESS_FILE=/tmp/rectify.alive
USER 65532:65532
# The worker touches its liveness file after every poll; a stalled poll loop fails the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["rectify", "healthcheck"]
# Any command runs as `docker run IMAGE audit verify`; with no arguments the image runs the worker.
ENTRYPOINT ["rectify"]
CMD ["worker"]
