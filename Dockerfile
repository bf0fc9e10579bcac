# One image for every trade2026 service: `docker run trade2026 run <service>` (docker-compose.yml
# runs the whole cluster from it). Build: docker build -t trade2026 .

# --- build: the release binary, from the lock file as committed ------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p trade2026 --locked \
 && install -m 0755 target/release/trade2026 /usr/local/bin/trade2026

# --- runtime: the binary alone (SQLite is bundled, TLS is rustls; ca-certificates for live
# exchange feeds and https webhooks) --------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /data trade2026 \
 && mkdir -p /data /keys \
 && chown trade2026:trade2026 /data /keys \
 && chmod 0700 /keys
COPY --from=build /usr/local/bin/trade2026 /usr/local/bin/trade2026
# A named volume mounted on /data or /keys starts with this owner and mode, so the non-root
# user can write its journal and the key file (which must stay private: 0600 in a 0700 dir).
USER trade2026
WORKDIR /data
ENV TRADE2026_DATA_DIR=/data
EXPOSE 8099 8109 8110 8111 8112 8113 6566
ENTRYPOINT ["trade2026"]
CMD ["--help"]
