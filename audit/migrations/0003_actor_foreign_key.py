# The actor column stays what it was (a nullable bigint named actor_id); only Django's view of it changes,
# from a plain integer to a foreign key without a database constraint. No data moves.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_plain_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name='auditentry', name='audit_actor_time'),
                migrations.RemoveField(model_name='auditentry', name='actor_id'),
                migrations.AddField(
                    model_name='auditentry',
                    name='actor',
                    field=models.ForeignKey(
                        blank=True, db_constraint=False, db_index=False, null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AddIndex(
                    model_name='auditentry',
                    index=models.Index(fields=['actor', 'created_at'], name='audit_actor_time'),
                ),
            ],
            database_operations=[],
        ),
    ]
