# syntax=docker/dockerfile:1
#
# One image, both gateways: /usr/local/bin/admin-gateway and /usr/local/bin/query-gateway. The
# default command serves the Admin Gateway; docker-compose.yml and the Helm chart choose the
# binary (and `admin-gateway migrate` for migrations, which are embedded in the binary).
#
#   docker build -t phoenix:dev .
#   docker run --rm phoenix:dev /usr/local/bin/query-gateway --help

# Build stage: static, stripped binaries. It runs on the build machine's platform and
# cross-compiles for the target one (docker buildx --platform linux/amd64,linux/arm64).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# Use the image's toolchain; never download another one during a build.
ENV GOTOOLCHAIN=local
# Dependencies first, so source edits reuse this layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/admin-gateway ./cmd/query-gateway

# Runtime stage: distroless static (CA certificates, tzdata, /etc/passwd; no shell, no package
# manager), running as the unprivileged user 65532 ("nonroot").
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="phoenix" \
      org.opencontainers.image.description="Phoenix Referral: admin-gateway and query-gateway" \
      org.opencontainers.image.source="https://github.com/phoenix-referral/phoenix"
COPY --from=build /out/admin-gateway /out/query-gateway /usr/local/bin/
USER 65532:65532
# 8080: admin-gateway, 8081: query-gateway (each serves /healthz, /readyz and /metrics too).
EXPOSE 8080 8081
CMD ["/usr/local/bin/admin-gateway"]
