#!/bin/sh
# One image, three roles (compose.yaml): web (migrate, then gunicorn), worker, beat. Anything else runs as given,
# e.g. `docker compose run --rm web manage.py createsuperuser`.
set -e
case "$1" in
  web)
    python manage.py migrate --noinput          # also creates the database cache table (members.apps)
    exec gunicorn config.wsgi:application --config config/gunicorn.py ;;
  worker)
    exec celery -A config worker -Q default,email,ml --loglevel INFO --concurrency "${CELERY_CONCURRENCY:-2}" ;;
  beat)
    exec celery -A config beat --loglevel INFO --scheduler django_celery_beat.schedulers:DatabaseScheduler ;;
  manage.py)
    shift; exec python manage.py "$@" ;;
  *)
    exec "$@" ;;
esac
