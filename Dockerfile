# Builds the controller and the receiver simulator into one small image.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libopus-dev libopusfile-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -o /out/loa ./cmd/loa && go build -trimpath -o /out/firmware-sim ./cmd/firmware-sim

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libopus0 libopusfile0 espeak-ng ffmpeg ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/loa /out/firmware-sim /usr/local/bin/
VOLUME /data
ENV LOA_DATA=/data
EXPOSE 8443 8883 5004/udp
ENTRYPOINT ["loa"]
CMD ["serve"]
