"""Each user's storage counters start from the documents they already hold."""

from django.db import migrations
from django.db.models import Count, Sum


def count_stored(apps, schema_editor) -> None:
    Document = apps.get_model("documents", "Document")
    User = apps.get_model("accounts", "User")
    for row in Document.objects.values("owner_id").annotate(documents=Count("id"), size=Sum("size")):
        User.objects.filter(pk=row["owner_id"]).update(documents_stored=row["documents"], bytes_stored=row["size"] or 0)


class Migration(migrations.Migration):

    dependencies = [
        ("documents", "0004_chunk_statistics_index"),
        ("accounts", "0002_storage_caps"),
    ]

    operations = [
        migrations.RunPython(count_stored, migrations.RunPython.noop),
    ]
