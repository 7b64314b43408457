"""``airflow.timetables``: only the dataset/asset-or-time schedules; other timetables are refused."""
