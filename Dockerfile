# rdma-monitor: one static binary and its default configuration, nothing else.
#   docker build -t rdma-monitor:0.1.0 -f Dockerfile .
#   docker run --privileged --network=host -v /sys:/sys:ro -e RDMA_MON_LLM__API_KEY=... rdma-monitor:0.1.0
# Least privilege instead of --privileged (see README, "Deploying"):
#   docker run --network=host --cap-drop=ALL --cap-add=NET_ADMIN --cap-add=NET_RAW \
#     --cap-add=DAC_OVERRIDE --device /dev/infiniband/umad0 -v /sys:/sys:ro rdma-monitor:0.1.0

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin rdma-monitor

FROM scratch
COPY --from=build /src/target/x86_64-unknown-linux-musl/release/rdma-monitor /rdma-monitor
COPY --from=build /src/config.yaml /etc/rdma-monitor/config.yaml
ENV RDMA_MON_GENERAL__SNAPSHOT_DIR=/var/lib/rdma-monitor
EXPOSE 9090
ENTRYPOINT ["/rdma-monitor", "--config", "/etc/rdma-monitor/config.yaml"]
