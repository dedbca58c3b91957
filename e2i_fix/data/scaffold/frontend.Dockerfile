# syntax=docker/dockerfile:1
# The frontend: `target: dev` runs the Vite dev server on 5173; the default (last) stage
# serves the production build with nginx on port 80.
FROM node:22-alpine AS deps
WORKDIR /app
COPY {manifests} ./
RUN {install}

FROM deps AS dev
COPY . .
EXPOSE 5173
CMD ["npm", "run", "dev", "--", "--host", "0.0.0.0"]

FROM deps AS build
COPY . .
RUN npm run build

FROM nginx:1.27-alpine AS production
COPY {nginx_conf} /etc/nginx/conf.d/default.conf
COPY --from=build /app/{dist} /usr/share/nginx/html
EXPOSE 80
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1/health || exit 1
