FROM node:20-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production
# onnxruntime-node ships its CPU binaries in the npm package; .npmrc skips the
# install step that would download CUDA files.
COPY package.json package-lock.json .npmrc tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY config ./config
COPY models ./models
RUN npm ci --include=dev --no-audit --no-fund \
  && npm prune --omit=dev --no-audit --no-fund

ENV UIE_OUTPUT_DIR=/data/results
VOLUME ["/data/results"]
ENTRYPOINT ["node", "bin/uie-batch.js"]
CMD ["work"]
