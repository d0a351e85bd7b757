# rectify's container image: built with the same `cargo build --release --locked` as CI, run
# as a non-root user from a distroless image with no shell.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs clippy.toml ./
COPY src ./src
COPY remediations ./remediations
COPY examples ./examples
RUN cargo build --release --locked --bins

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/rectify /usr/local/bin/rectify
ENV RECTIFY_LOG_FORMAT=json \
    RECTIFY_METRICS=emf \
    RECTIFY_LIVENESS_FILE=/tmp/rectify.alive
USER 65532:65532
# The worker touches its liveness file after every poll; a stalled poll loop fails the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["rectify", "healthcheck"]
ENTRYPOINT ["rectify", "worker"]
