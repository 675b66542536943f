@echo off
rem Starts convoflow's Celery worker, Beat and Flower on Windows, each in its own window.
rem Needs Redis first (for example: docker run -d -p 6379:6379 redis:7-alpine); then start the API
rem in another window with: python main.py
rem Celery's default prefork pool does not work on Windows, so the worker uses threads
rem (--pool=solo also works, one task at a time). Celery enforces task time limits with prefork only.
setlocal
cd /d "%~dp0"
if exist ".venv\Scripts\activate.bat" call ".venv\Scripts\activate.bat"
if not exist data mkdir data
rem Bring the database to the latest schema first (safe to repeat).
python -m convoflow.db || exit /b 1

start "convoflow worker" cmd /k celery -A celery_app worker --loglevel=info --pool=threads --concurrency=4
start "convoflow beat" cmd /k celery -A celery_app beat --loglevel=info --schedule=data\celerybeat-schedule
start "convoflow flower" cmd /k celery -A celery_app flower

echo Started the Celery worker, Beat and Flower in their own windows (close a window to stop that service).
echo Flower: http://localhost:5555    API: start it with "python main.py", then http://localhost:8000/docs
endlocal
