# syntax=docker/dockerfile:1
#
# The ecs-operator image: the release binary on distroless (glibc, CA certificates, no shell),
# running as a non-root numeric user. Build from the repository root:
#
#   docker build -t ecs-operator:dev .
#   docker run --rm -e AWS_REGION=eu-west-1 -e ECS_OPERATOR_STORE=s3://BUCKET/PREFIX ecs-operator:dev
#
# The container's health check is `ecs-operator healthcheck` (GET /healthz on loopback); there is
# no curl or wget in the image. See manifests/operator/ for the task definition and IAM policy.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---- builder: the release binary --------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
# aws-lc-sys (rustls' crypto provider) compiles C; cmake covers the targets where it needs it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target folder between builds (BuildKit); the binary is
# copied out of the cached target folder so the next stage can take it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ecs-operator \
 && install -D -m 0755 target/release/ecs-operator /out/ecs-operator

# ---- runtime: the binary and CA certificates, nothing else ------------------------------------
# distroless/cc: glibc and libgcc of Debian 12 (the builder's release) plus /etc/ssl/certs.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="ecs-operator" \
      org.opencontainers.image.description="A reconciling operator for Amazon ECS" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/ecs-operator /usr/local/bin/ecs-operator
# `run` serves /healthz, /readyz and /metrics here; `healthcheck` reads the same variable.
ENV ECS_OPERATOR_METRICS_ADDR=0.0.0.0:9090
EXPOSE 9090
# The distroless "nonroot" user, by number so that ECS and Kubernetes can check it is not root.
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/ecs-operator", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/ecs-operator"]
CMD ["run"]
